/// Everything held about one customer: traits, status derived from events, windowed metrics,
/// workflow progress and timers, and message history. A value: the engine takes it and gives
/// back the next one, and the runtime stores it in its changelog.
public struct CustomerState: Sendable, Hashable {
    public var customerID: String
    /// The latest event time seen: the customer's own stream time.
    @PackedTime public var latestEventTime: Timestamp? = nil
    /// The workflow the customer is in, if any: one upsell at a time.
    public var run: Run?
    /// Traits, recent message ids, messages sent, suppressions, workflow memories and metrics, in
    /// one block.
    var block: StateBlock
    /// What few customers have, in a block of its own: eight bytes for the others.
    private var extras: SharedFields<Extras>?

    private struct Extras: Hashable, Sendable {
        var accountID: String?
        var accountTraits = PackedJSONObject()
        var lateEvents = 0
        var aliases: [String] = []
        var precedents: [String: Timestamp] = [:]
        /// Each workflow's assigned variant, if any has one; empty when none has.
        var variants: [String?] = []
    }

    private mutating func updateExtras(_ change: (inout Extras) -> Void) {
        if extras == nil { extras = SharedFields(Extras()) }
        change(&SharedFields.unique(&extras!).fields)
        // None of it left: a state without extras is one with none.
        if extras!.fields == Extras() { extras = nil }
    }

    /// The account of the last `group` call, and that account's traits.
    public var accountID: String? {
        get { extras?.fields.accountID }
        set { updateExtras { $0.accountID = newValue } }
    }

    public var accountTraits: PackedJSONObject {
        get { extras?.fields.accountTraits ?? PackedJSONObject() }
        set {
            updateExtras { $0.accountTraits = newValue }
            forgetTraitFacts()
        }
    }

    /// Events later than the allowed lateness, reported and not folded in.
    public var lateEvents: Int {
        get { extras?.fields.lateEvents ?? 0 }
        set { updateExtras { $0.lateEvents = newValue } }
    }

    /// Ids an `alias` call linked to this customer.
    public var aliases: [String] {
        get { extras?.fields.aliases ?? [] }
        set { updateExtras { $0.aliases = newValue } }
    }

    /// When the customer last sent each event that a guardrail must follow (`after:`).
    public var precedents: [String: Timestamp] {
        get { extras?.fields.precedents ?? [:] }
        set { updateExtras { $0.precedents = newValue } }
    }

    public init(customerID: String, program: Program) {
        self.customerID = customerID
        block = StateBlock(
            suppressions: program.suppressions.count, workflows: program.workflows.count,
            distinct: program.metrics.map { if case .distinct = $0.aggregate { true } else { false } })
    }

    private func variant(of workflow: Int) -> String? {
        guard let variants = extras?.fields.variants, workflow < variants.count else { return nil }
        return variants[workflow]
    }

    /// Index-aligned with ``Program/workflows``: a copy of each one's memory. The variants of their
    /// assignments are read with ``assignment(of:)``.
    public var workflows: [WorkflowMemory] {
        get { (0..<block.workflowCount).map { self[workflow: $0] } }
        set { for (index, memory) in newValue.enumerated() { self[workflow: index] = memory } }
    }

    /// Workflow `index`'s memory.
    subscript(workflow index: Int) -> WorkflowMemory {
        get { block.workflowCells(index).map(WorkflowMemory.init) ?? WorkflowMemory() }
        // Found once, for both the read and the write.
        _modify {
            let (position, found) = block.find(Int64(index), in: .workflows, size: WorkflowMemory.cellCount)
            var memory = found ? WorkflowMemory(block.workflowCells(at: position)) : WorkflowMemory()
            yield &memory
            block.setWorkflowCells(at: position, found: found, memory.isAsMade ? nil : memory.cells(index: index))
        }
    }

    /// Calls `body` with each workflow's index and memory, but for those as they were made (never
    /// entered, nothing held, nothing scheduled), in index order.
    func forEachWorkflowMemory(_ body: (Int, WorkflowMemory) -> Void) {
        block.forEachWorkflow { body($0, WorkflowMemory($1)) }
    }

    /// Workflow `index`'s latest assignment, with its variant.
    public func assignment(of index: Int) -> WorkflowMemory.Assignment? {
        let memory = self[workflow: index]
        return memory.assignment(variant: memory.hasVariant ? variant(of: index) : nil)
    }

    /// Records an entry into workflow `index` at `time`: see ``WorkflowMemory/enter(at:holdout:hasVariant:)``.
    mutating func enter(workflow index: Int, at time: Timestamp, holdout: Bool, variant: String?) {
        let hadVariant = self[workflow: index].hasVariant
        self[workflow: index].enter(at: time, holdout: holdout, hasVariant: variant != nil)
        if hadVariant || variant != nil { setVariant(variant, of: index) }
    }

    /// Keeps the variant of workflow `index`'s latest assignment.
    mutating func setVariant(_ variant: String?, of index: Int) {
        guard variant != self.variant(of: index) else { return }
        let count = block.workflowCount
        updateExtras { extras in
            if extras.variants.isEmpty { extras.variants = Array(repeating: nil, count: count) }
            extras.variants[index] = variant
            if extras.variants.allSatisfy({ $0 == nil }) { extras.variants = [] }
        }
    }

    /// Index-aligned with ``Program/metrics``: a copy of what the state keeps of each.
    public var metrics: [MetricState] {
        get {
            (0..<block.metricCount).map { MetricState(block.records(.metric($0)), countsDistinct: block.isDistinct(.metric($0))) }
        }
        set {
            for (index, metric) in newValue.enumerated() { block.replace(.metric(index), with: metric.cells) }
        }
    }

    /// Index-aligned with ``Program/suppressions``: a copy of each one's times.
    public var suppressions: [SuppressionState] {
        get { (0..<block.suppressionCount).map(suppression) }
        set {
            for (index, suppression) in newValue.enumerated() {
                block.setValue(suppression.lastStart?.rawValue, keyed: Self.key(ofSuppression: index, start: true), in: .suppressions)
                block.setValue(suppression.lastEnd?.rawValue, keyed: Self.key(ofSuppression: index, start: false), in: .suppressions)
            }
        }
    }

    /// Suppression `index`'s times.
    func suppression(_ index: Int) -> SuppressionState {
        let time = { (start: Bool) in
            self.block.value(keyed: Self.key(ofSuppression: index, start: start), in: .suppressions).map(Timestamp.init(rawValue:))
        }
        return SuppressionState(lastStart: time(true), lastEnd: time(false))
    }

    /// Notes a start (or an end) event of suppression `index` at `time`: the latest of each counts.
    mutating func recordSuppression(_ index: Int, start: Bool, at time: Timestamp) {
        let key = Self.key(ofSuppression: index, start: start)
        block.setValue(max(block.value(keyed: key, in: .suppressions) ?? time.rawValue, time.rawValue), keyed: key, in: .suppressions)
    }

    /// A suppression time's key in the block: starts and ends of one suppression side by side.
    private static func key(ofSuppression index: Int, start: Bool) -> Int64 { Int64(index) * 2 + (start ? 0 : 1) }

    /// The customer's traits: a copy of their packed text, which the state block keeps.
    public var traits: PackedJSONObject {
        get { block.withTraitText { PackedJSONObject(text: Array($0)) } }
        set {
            block.setTraitText(newValue.text)
            forgetTraitFacts()
        }
    }

    /// A trait of the customer, or of their account under `account.`.
    public func trait(_ path: [String]) -> JSONValue? { Self.trait(path, block, accountTraits) }

    /// Reads traits as ``trait(_:)`` does, holding only what holds the traits: a closure over
    /// the whole state would copy it on every reading.
    var traitReader: ([String]) -> JSONValue? {
        let (block, accountTraits) = (block, accountTraits)
        return { Self.trait($0, block, accountTraits) }
    }

    private static func trait(_ path: [String], _ block: StateBlock, _ accountTraits: PackedJSONObject) -> JSONValue? {
        if path.first == "account" { return accountTraits.value(at: path.dropFirst()) }
        return block.withTraitText { PackedJSONObject.value(at: path[...], in: $0) }
    }

    /// The metrics' billing anchors, worked out with the facts for a program that has any.
    var billingAnchors = Memo<BillingAnchors>()
    /// What the rules read from the traits, worked out when the engine next needs it.
    var traitFacts = Memo<TraitFacts>()
    /// Channels the customer opted into (SMS needs this) and out of, by the latest event, as
    /// masks of ``Channel/bit``. Declared after the facts, whose last word has room for them: a
    /// state of 80 bytes instead of 88.
    var subscribedChannels: UInt8 = 0
    var unsubscribedChannels: UInt8 = 0

    /// A trait changed: the facts and each trigger's limit are read from the traits again.
    private mutating func forgetTraitFacts() {
        traitFacts = Memo()
        billingAnchors = Memo()
        block.forgetLimits()
    }
}

/// What a suppression rule needs remembered: the last start and end events, by event time.
public struct SuppressionState: Sendable, Hashable {
    @PackedTime public var lastStart: Timestamp? = nil
    @PackedTime public var lastEnd: Timestamp? = nil

    public init(lastStart: Timestamp? = nil, lastEnd: Timestamp? = nil) {
        self.lastStart = lastStart
        self.lastEnd = lastEnd
    }

    /// Whether an event rule holds at `time`. A trait rule remembers nothing here: it is read
    /// from the traits, through ``TraitFacts``.
    func isActive(_ rule: SuppressionDefinition.Rule, at time: Timestamp) -> Bool {
        switch rule {
        case .between:
            guard let lastStart, lastStart <= time else { return false }
            return lastEnd.map { $0 < lastStart } ?? true
        case .within(let span, _):
            guard let lastStart else { return false }
            return lastStart <= time && time < lastStart + span
        case .trait:
            return false
        }
    }
}

/// A value worked out from others and kept to save working it out again; nil until then. It is
/// no part of the value that holds it: two states that differ only in what they have memoized
/// are equal and hash alike.
struct Memo<Value: Sendable>: Sendable, Hashable {
    var value: Value?

    static func == (_: Self, _: Self) -> Bool { true }

    func hash(into hasher: inout Hasher) {}
}
