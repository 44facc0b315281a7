/// What the rules read from a customer's traits on entry attempts and messages, worked out once
/// after the traits change.
///
/// Traits are held as packed text (``PackedJSONObject``): compact, but each read scans it. A
/// customer whose trigger holds while a trait keeps them out (the wrong plan, a low NPS) is tried
/// again on every event, and every message checks consent; those reads come from here instead.
/// Plain bits, copied without a retain: an array here made every read of the facts cost one.
struct TraitFacts: Sendable, Hashable {
    /// Bit `i`: the program's suppression `i` is a trait rule, and it holds.
    private var suppressions: UInt64 = 0
    /// Bit `w`: every trait condition of workflow `w`'s eligibility holds.
    private var eligible: UInt64 = 0
    /// Bits by ``Channel/bit``: opted out by trait (`unsubscribed.<channel>: true`), and the
    /// `consent.<channel>` trait true or false (neither when absent).
    private var unsubscribed: UInt8 = 0
    private var consented: UInt8 = 0
    private var refused: UInt8 = 0

    /// How many suppressions and workflows the masks cover; past them each fact is read from the
    /// traits every time.
    static let capacity = UInt64.bitWidth

    /// Given the program's lists, not the program: a program passed from where the engine keeps
    /// it was copied whole for the call, each of its lists retained and then released.
    ///
    /// - Parameter trait: the value at a path of trait names, as ``CustomerState/trait(_:)``
    ///   reads it. An `identify` passes a reader of the traits it has just merged, which need not
    ///   be read back from the state.
    init(suppressions definitions: [SuppressionDefinition], workflows: [Workflow], trait: ([String]) -> JSONValue?) {
        for index in definitions.indices.prefix(Self.capacity) where definitions[index].holds(forTrait: trait) {
            suppressions |= 1 << UInt64(index)
        }
        for index in workflows.indices.prefix(Self.capacity) where Self.traitConditionsHold(workflows[index], trait) {
            eligible |= 1 << UInt64(index)
        }
        let optOuts = trait(Self.unsubscribedPath)?.object
        let consents = trait(Self.consentPath)?.object
        guard optOuts != nil || consents != nil else { return }
        for channel in Channel.allCases {
            if optOuts?[channel.rawValue]?.bool == true { unsubscribed |= channel.bit }
            switch consents?[channel.rawValue]?.bool {
            case true?: consented |= channel.bit
            case false?: refused |= channel.bit
            case nil: break
            }
        }
    }

    private static let unsubscribedPath = ["unsubscribed"]
    private static let consentPath = ["consent"]

    /// Whether trait suppression `index` holds; the caller checks that it is a trait rule.
    func isSuppressed(_ index: Int, _ state: CustomerState, program: Program) -> Bool {
        guard index < Self.capacity else { return program.suppressions[index].holds(forTrait: state.trait) }
        return suppressions & 1 << UInt64(index) != 0
    }

    /// Whether every trait condition of workflow `index`'s eligibility holds.
    func isEligible(_ index: Int, _ state: CustomerState, program: Program) -> Bool {
        guard index < Self.capacity else { return Self.traitConditionsHold(program.workflows[index], state.trait) }
        return eligible & 1 << UInt64(index) != 0
    }

    func isUnsubscribed(_ channel: Channel) -> Bool { unsubscribed & channel.bit != 0 }

    /// The `consent.<channel>` trait, nil when absent or not a boolean.
    func consent(_ channel: Channel) -> Bool? {
        if consented & channel.bit != 0 { return true }
        if refused & channel.bit != 0 { return false }
        return nil
    }

    private static func traitConditionsHold(_ workflow: Workflow, _ trait: ([String]) -> JSONValue?) -> Bool {
        workflow.eligibility.allSatisfy { condition in
            guard case .trait(let path, let comparison) = condition else { return true }
            return comparison.holds(for: trait(path))
        }
    }
}

extension SuppressionDefinition {
    /// Whether a trait rule holds for the traits `trait` reads; false when the trait is missing,
    /// and for the other rules.
    func holds(forTrait trait: ([String]) -> JSONValue?) -> Bool {
        guard case .trait(let path, let comparison) = rule, let value = trait(path) else { return false }
        return comparison.holds(for: value)
    }
}

extension Channel {
    /// The channel's place among all channels, as a state keeps a message sent on it.
    var place: Int { bit.trailingZeroBitCount }

    /// The channel's bit in a mask of channels: 1 << its place.
    var bit: UInt8 {
        switch self {
        case .email: 1
        case .inApp: 2
        case .sms: 4
        case .push: 8
        }
    }
}

/// Each metric's billing anchor (`window: billing_period`), index-aligned with the program's
/// metrics, worked out with the ``TraitFacts``: every event that folds into or checks such a
/// metric needs its anchor. Kept only for a program that has such a window.
struct BillingAnchors: Sendable, Hashable {
    private var dates: [Timestamp?]

    /// Nil when no metric has a billing window. Given the program's metrics, as ``TraitFacts`` is
    /// given its lists.
    init?(metrics: [MetricDefinition], trait: ([String]) -> JSONValue?) {
        guard metrics.contains(where: { if case .billingPeriod = $0.window { true } else { false } }) else { return nil }
        dates = metrics.map { metric in
            guard case .billingPeriod(let path) = metric.window, let text = trait(path)?.string else { return nil }
            return ISO8601.parse(text)
        }
    }

    /// Metric `index`'s anchor: nil when the trait is missing or not a date.
    subscript(index: Int) -> Timestamp? { dates[index] }
}
