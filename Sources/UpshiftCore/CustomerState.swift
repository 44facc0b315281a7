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

    /// Consent and unsubscribes per channel, and the messages sent: a copy.
    public var channels: ChannelState {
        get {
            ChannelState(
                subscribed: Set(Channel.allCases.filter { subscribedChannels & $0.bit != 0 }),
                unsubscribed: Set(Channel.allCases.filter { unsubscribedChannels & $0.bit != 0 }),
                sent: block.records(.sent).map(ChannelState.SentMessage.init))
        }
        set {
            subscribedChannels = newValue.subscribed.reduce(0) { $0 | $1.bit }
            unsubscribedChannels = newValue.unsubscribed.reduce(0) { $0 | $1.bit }
            block.replace(.sent, with: newValue.sent.map(\.cell))
        }
    }

    /// Hashes of recent `messageId`s with their event times, to ignore resends: a copy.
    public var recentMessages: [MessageMark] {
        get { block.records(.recentMessages).map { MessageMark(hash: UInt64(bitPattern: $0.first), time: Timestamp(rawValue: $0.second)) } }
        set { block.replace(.recentMessages, with: newValue.map { StateBlock.Cell(first: Int64(bitPattern: $0.hash), second: $0.time.rawValue) }) }
    }

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

    public struct MessageMark: Sendable, Hashable {
        public var hash: UInt64
        public var time: Timestamp
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

/// Consent and unsubscribes per channel, and the messages sent, for caps.
public struct ChannelState: Sendable, Hashable {
    /// Channels the customer opted into (SMS needs this) and out of (any channel), by the latest event.
    public var subscribed: Set<Channel> = []
    public var unsubscribed: Set<Channel> = []
    /// Messages sent, oldest first, pruned past the longest cap.
    public var sent: [SentMessage] = []

    public init(subscribed: Set<Channel> = [], unsubscribed: Set<Channel> = [], sent: [SentMessage] = []) {
        self.subscribed = subscribed
        self.unsubscribed = unsubscribed
        self.sent = sent
    }

    public struct SentMessage: Sendable, Hashable {
        public var time: Timestamp
        public var channel: Channel

        public init(time: Timestamp, channel: Channel) {
            self.time = time
            self.channel = channel
        }

        /// As a ``StateBlock`` keeps it: the time, and the channel's position among all channels.
        init(_ cell: StateBlock.Cell) {
            self.init(time: Timestamp(rawValue: cell.first), channel: Channel.allCases[Int(cell.second)])
        }

        var cell: StateBlock.Cell { StateBlock.Cell(first: time.rawValue, second: Int64(Channel.allCases.firstIndex(of: channel)!)) }
    }
}

/// Per workflow: how often the customer entered, and the trigger's memory.
public struct WorkflowMemory: Sendable, Hashable {
    // Kept in a customer's ``StateBlock`` as four cells (see ``cells``), and its variant, which
    // few have, with the state's extras. Times are packed, the suppression reasons kept as a
    // digest, and the assignment's time and entry are those of the latest entry.
    @PackedTime public var lastEntry: Timestamp? = nil
    /// Since when the trigger's condition has held, for `sustained`.
    @PackedTime public var conditionSince: Timestamp? = nil
    /// A time trigger's due time, and the date or event time it was computed from.
    @PackedTime public var scheduled: Timestamp? = nil
    @PackedTime public var scheduledFrom: Timestamp? = nil
    /// The reasons of the last suppression reported, so a lasting one is reported once.
    public var lastSuppression = ReasonsDigest.none
    private var attributed: UInt64 = 0
    private var entryCount: UInt32 = 0
    /// Whether the trigger was already acted on since the condition began to hold.
    public var sustainedChecked = false
    private var assigned = false
    private var heldOut = false
    /// Whether the latest assignment has a variant, which the customer's state keeps apart: few
    /// have one.
    private(set) var hasVariant = false

    public init() {}

    /// How a ``StateBlock`` holds it, without its variant: the times, the digest and attributions,
    /// then the workflow's index and the count and flags.
    static let cellCount = 4

    typealias Cells = (StateBlock.Cell, StateBlock.Cell, StateBlock.Cell, StateBlock.Cell)

    func cells(index: Int) -> Cells {
        let flags = Int64(entryCount) | (sustainedChecked ? 1 << 32 : 0) | (assigned ? 1 << 33 : 0) | (heldOut ? 1 << 34 : 0) | (hasVariant ? 1 << 35 : 0)
        return (
            StateBlock.Cell(first: _lastEntry.milliseconds, second: _conditionSince.milliseconds),
            StateBlock.Cell(first: _scheduled.milliseconds, second: _scheduledFrom.milliseconds),
            StateBlock.Cell(first: Int64(bitPattern: lastSuppression.value), second: Int64(bitPattern: attributed)),
            StateBlock.Cell(first: Int64(index), second: flags)
        )
    }

    init(_ cells: Cells) {
        _lastEntry.milliseconds = cells.0.first
        _conditionSince.milliseconds = cells.0.second
        _scheduled.milliseconds = cells.1.first
        _scheduledFrom.milliseconds = cells.1.second
        lastSuppression = ReasonsDigest(value: UInt64(bitPattern: cells.2.first))
        attributed = UInt64(bitPattern: cells.2.second)
        let flags = cells.3.second
        entryCount = UInt32(truncatingIfNeeded: flags)
        sustainedChecked = flags & 1 << 32 != 0
        assigned = flags & 1 << 33 != 0
        heldOut = flags & 1 << 34 != 0
        hasVariant = flags & 1 << 35 != 0
    }

    /// Whether the memory is as it was made: never entered, nothing held, nothing scheduled.
    var isAsMade: Bool {
        let cells = cells(index: 0)
        return cells.0.first == .min && cells.0.second == .min && cells.1.first == .min && cells.1.second == .min
            && cells.2.first == 0 && cells.2.second == 0 && cells.3.second == 0
    }

    /// How many times the customer entered the workflow, treatment and holdout alike.
    public var entries: Int { Int(entryCount) }

    /// The latest assignment (entry into the treatment or the holdout), with its variant as the
    /// customer's state keeps it: see ``CustomerState/assignment(of:)``.
    func assignment(variant: String?) -> Assignment? {
        guard assigned, let lastEntry else { return nil }
        return Assignment(time: lastEntry, holdout: heldOut, variant: variant, entry: entries, attributed: attributed)
    }

    /// Records an entry at `time`, into the holdout or the treatment (with a variant or not): the
    /// new latest assignment, with nothing attributed to it yet.
    mutating func enter(at time: Timestamp, holdout: Bool, hasVariant: Bool) {
        entryCount += 1
        lastEntry = time
        lastSuppression = .none
        assigned = true
        heldOut = holdout
        self.hasVariant = hasVariant
        attributed = 0
    }

    /// Marks outcome `bit` (see ``Assignment/attributed``) as attributed to the latest assignment.
    public mutating func markAttributed(_ bit: Int) { attributed |= 1 << UInt64(bit) }

    /// The arm of an assignment and what was attributed to it, as a changelog record holds them.
    typealias Arm = (holdout: Bool, hasVariant: Bool, attributed: UInt64)

    /// Restores a memory from a changelog record: `entries` entries, the latest at `lastEntry`,
    /// and the arm of the latest assignment, which belongs to that entry, if one was recorded.
    mutating func restore(entries: Int, lastEntry: Timestamp?, assignment: Arm?) {
        entryCount = UInt32(clamping: entries)
        self.lastEntry = lastEntry
        assigned = assignment != nil && lastEntry != nil
        heldOut = assignment?.holdout ?? false
        hasVariant = assigned && assignment?.hasVariant == true
        attributed = assignment?.attributed ?? 0
    }

    /// Where a customer was put when they last entered: the arm, and which outcomes were already
    /// attributed to it (each conversion and guardrail at most once per assignment).
    public struct Assignment: Sendable, Hashable {
        public var time: Timestamp
        /// Held out: decided, not sent, the baseline of measurement.
        public var holdout: Bool
        /// The variant sent, when the workflow has variants and the customer is not held out.
        public var variant: String?
        public var entry: Int
        /// Bit `i` for conversion `i`, bit `32 + i` for guardrail `i`.
        public var attributed: UInt64 = 0
    }

    /// When a held condition has been held long enough to be checked again without an event.
    func sustainedCheck(_ sustained: TimeSpan?) -> Timestamp? {
        guard let since = conditionSince, let sustained, sustained > .zero, !sustainedChecked else { return nil }
        return since + sustained
    }
}

/// A customer's progress through a workflow.
///
/// Its fields live in a block of their own, copied on write, so that `Run?` takes eight bytes of
/// a customer's state instead of 96: nine customers in ten are in no workflow at a time.
public struct Run: Sendable, Hashable {
    private struct Fields: Hashable, Sendable {
        var workflow: Int
        var entry: Int
        var enteredAt: Timestamp
        var variant: String?
        var position: Int
        var waiting: Waiting?
        var evidence: JSONObject
    }

    private var storage: SharedFields<Fields>

    public init(workflow: Int, entry: Int, enteredAt: Timestamp, variant: String?, position: Int, waiting: Waiting?, evidence: JSONObject) {
        storage = SharedFields(Fields(
            workflow: workflow, entry: entry, enteredAt: enteredAt, variant: variant, position: position, waiting: waiting, evidence: evidence))
    }

    public var workflow: Int {
        get { storage.fields.workflow }
        set { unique().fields.workflow = newValue }
    }

    public var entry: Int {
        get { storage.fields.entry }
        set { unique().fields.entry = newValue }
    }

    public var enteredAt: Timestamp {
        get { storage.fields.enteredAt }
        set { unique().fields.enteredAt = newValue }
    }

    public var variant: String? {
        get { storage.fields.variant }
        set { unique().fields.variant = newValue }
    }

    /// The next instruction to execute.
    public var position: Int {
        get { storage.fields.position }
        set { unique().fields.position = newValue }
    }

    public var waiting: Waiting? {
        get { storage.fields.waiting }
        set { unique().fields.waiting = newValue }
    }

    /// The evidence of the trigger that started the run, repeated on its outputs.
    public var evidence: JSONObject {
        get { storage.fields.evidence }
        set { unique().fields.evidence = newValue }
    }

    private mutating func unique() -> SharedFields<Fields> { SharedFields.unique(&storage) }

    public enum Waiting: Sendable, Hashable {
        /// Resume at ``Run/position`` at this time (a wait step, or quiet hours).
        case until(Timestamp)
        /// Resume on the event, or jump to `timeoutPosition` at `timeout`.
        case event(name: String, timeout: Timestamp, timeoutPosition: Int)

        var due: Timestamp {
            switch self {
            case .until(let time): time
            case .event(_, let timeout, _): timeout
            }
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

/// The reasons of a suppression as a 64-bit stable hash, for telling whether a suppression is
/// the one reported last: a list of names would cost each workflow memory a heap block.
public struct ReasonsDigest: Sendable, Hashable {
    public private(set) var value: UInt64

    /// No suppression reported.
    public static let none = Self(value: 0)

    public init(value: UInt64) { self.value = value }

    public init(_ reasons: [String]) {
        guard !reasons.isEmpty else {
            self = .none
            return
        }
        var hasher = StableHasher()
        for reason in reasons { hasher.combine(reason) }
        // 0 stands for none; a list that hashes to it is told apart.
        value = hasher.value == 0 ? 1 : hasher.value
    }
}

/// Fields kept in a block of their own and shared by copies of the value that holds them, until
/// one of them writes: see ``unique(_:)``.
final class SharedFields<Fields: Hashable & Sendable>: @unchecked Sendable, Hashable {
    // Written only through unique(_:), so never while shared; no dynamic exclusivity check, since
    // the fields are reached only through the value that holds them.
    @exclusivity(unchecked) var fields: Fields

    init(_ fields: Fields) { self.fields = fields }

    /// The storage, copied first if another value shares it: the one to write to.
    static func unique(_ storage: inout SharedFields) -> SharedFields {
        if !isKnownUniquelyReferenced(&storage) { storage = SharedFields(storage.fields) }
        return storage
    }

    static func == (lhs: SharedFields, rhs: SharedFields) -> Bool { lhs === rhs || lhs.fields == rhs.fields }

    func hash(into hasher: inout Hasher) { hasher.combine(fields) }
}
