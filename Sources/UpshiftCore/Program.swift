/// Everything a workflow file declares, checked and compiled: metrics, suppressions, caps, quiet
/// hours and workflows, referring to each other by index.
public struct Program: Sendable {
    public var metrics: [MetricDefinition] = []
    public var suppressions: [SuppressionDefinition] = []
    public var caps: [FrequencyCap] = []
    public var quietHours: [QuietHours] = []
    /// Events that count against the workflows a customer was exposed to: unsubscribes, complaints.
    public var guardrails: [Guardrail] = []
    /// In priority order, highest first: a customer is in at most one of them at a time.
    public var workflows: [Workflow] = []
    public var settings = Settings()

    public init() {}

    public struct Settings: Sendable, Hashable {
        /// A `messageId` seen again within this long is ignored.
        public var deduplicationWindow: TimeSpan = .hours(24)
        /// How far behind the customer's latest event time an event may arrive and still count.
        public var allowedLateness: TimeSpan = .hours(1)
        /// A customer with no event and no pending timer for this long is forgotten.
        public var idleTTL: TimeSpan = .days(400)

        public init() {}
    }

    public func metricIndex(_ name: String) -> Int? { metrics.firstIndex { $0.name == name } }
    public func suppressionIndex(_ name: String) -> Int? { suppressions.firstIndex { $0.name == name } }
}

/// The channels an offer goes out on.
public enum Channel: String, Sendable, Hashable, CaseIterable, Comparable, Codable {
    case email, inApp = "in_app", sms, push

    public static func < (lhs: Self, rhs: Self) -> Bool { lhs.rawValue < rhs.rawValue }
}

/// A windowed aggregate of one event's occurrences, kept per customer.
public struct MetricDefinition: Sendable, Hashable {
    public enum Aggregate: Sendable, Hashable {
        case count
        case sum(property: [String])
        case max(property: [String])
        case distinct(property: [String])
    }

    public enum Window: Sendable, Hashable {
        /// The last `length`, in buckets of `bucket`: memory is at most `length / bucket` buckets.
        case sliding(length: TimeSpan, bucket: TimeSpan)
        /// The current calendar period in UTC.
        case calendar(CalendarPeriod)
        /// The current billing period, which starts on the day of month of a date trait.
        case billingPeriod(anchorTrait: [String])
    }

    public enum CalendarPeriod: String, Sendable, Hashable { case day, week, month }

    public var name: String
    public var aggregate: Aggregate
    public var event: String
    /// Every listed property must hold one of its values.
    public var filter: [PropertyMatch]
    public var window: Window

    public init(name: String, aggregate: Aggregate, event: String, filter: [PropertyMatch] = [], window: Window) {
        self.name = name
        self.aggregate = aggregate
        self.event = event
        self.filter = filter
        self.window = window
    }
}

/// A property that must equal one of a list of values.
public struct PropertyMatch: Sendable, Hashable {
    public var path: [String]
    public var values: [JSONValue]

    public func matches(_ properties: PackedJSONObject) -> Bool {
        guard let value = properties.value(at: path) else { return false }
        return values.contains(value)
    }
}

/// A reason not to message a customer.
public struct SuppressionDefinition: Sendable, Hashable {
    public enum Rule: Sendable, Hashable {
        /// Active from the last `start` event until a later `end` event (an open ticket).
        case between(start: String, end: String)
        /// Active for `span` after the last `event` (a recent refund).
        case within(span: TimeSpan, event: String)
        /// Active while a trait satisfies the comparison (an NPS below 7).
        case trait(path: [String], Comparison)
    }

    public var name: String
    public var rule: Rule
}

/// A test of one value.
public enum Comparison: Sendable, Hashable {
    case below(Double)
    case above(Double)
    case atLeast(Double)
    case atMost(Double)
    case oneOf([JSONValue])
    case noneOf([JSONValue])
    case present(Bool)

    public func holds(for value: JSONValue?) -> Bool {
        switch self {
        case .below(let bound): value?.number.map { $0 < bound } ?? false
        case .above(let bound): value?.number.map { $0 > bound } ?? false
        case .atLeast(let bound): value?.number.map { $0 >= bound } ?? false
        case .atMost(let bound): value?.number.map { $0 <= bound } ?? false
        case .oneOf(let values): value.map(values.contains) ?? false
        case .noneOf(let values): value.map { !values.contains($0) } ?? true
        case .present(let wanted): (value != nil && value != .null) == wanted
        }
    }
}

/// A condition on a customer, for eligibility and branches.
public enum Condition: Sendable, Hashable {
    case trait(path: [String], Comparison)
    case metric(index: Int, Comparison)
    case suppression(index: Int, active: Bool)
}

/// At most `maximum` messages on these channels per `span`, across all workflows.
public struct FrequencyCap: Sendable, Hashable {
    public var name: String
    public var maximum: Int
    public var span: TimeSpan
    public var channels: Set<Channel>
}

/// Hours in the customer's local time when messages on these channels wait.
public struct QuietHours: Sendable, Hashable {
    public enum Zone: Sendable, Hashable {
        case trait(path: [String], fallback: String)
        case fixed(String)
    }

    public var name: String
    /// Minutes after local midnight.
    public var from: Int
    public var to: Int
    public var zone: Zone
    public var channels: Set<Channel>
}

/// An event that counts as the success of a workflow when it follows the customer's assignment
/// (exposure or holdout) within `within`: a plan upgrade, a trial started, an add-on bought.
public struct Conversion: Sendable, Hashable {
    public var name: String
    public var event: String
    public var filter: [PropertyMatch]
    public var within: TimeSpan
    /// The property holding the revenue the conversion brought, if it carries one.
    public var revenue: [String]?
}

/// An event that may mean a workflow hurt trust, attributed like a conversion: an unsubscribe, a
/// spam complaint, a refund, a downgrade soon after an upgrade, a ticket after an exposure.
public struct Guardrail: Sendable, Hashable {
    public var name: String
    public var event: String
    public var within: TimeSpan
    /// Counts only when this event came first, within `within` before, and after the assignment
    /// (a downgrade within 30 days after an upgrade).
    public var after: String?
    /// Pauses a variant whose rate of this guardrail among its assigned customers goes above this
    /// fraction, once it has `minimumSample` customers.
    public var pauseAbove: Double?
    public var minimumSample: Int
}

/// A customer journey: how one enters, who may, what is sent, and when it ends.
///
/// A class, immutable once loaded: the engine reads workflows on every event, and a reference is
/// one retain where a struct of a dozen arrays and strings is a dozen.
public final class Workflow: Sendable, Hashable {
    public let id: String
    public let version: Int
    public let enabled: Bool
    public let priority: Int
    public let trigger: Trigger
    public let eligibility: [Condition]
    /// Indexes into ``Program/suppressions``.
    public let suppressions: [Int]
    /// Percent of customers held out, 0...100.
    public let holdoutPercent: Double
    public let variants: [(name: String, percent: Double)]
    public let instructions: [Instruction]
    public let exitOn: [String]
    public let reenterAfter: TimeSpan?
    /// Mixed into the hash that assigns holdout and variant; changing it reshuffles customers.
    public let salt: String
    /// What counts as this workflow's success, for measurement against the holdout.
    public let conversions: [Conversion]

    public init(
        id: String, version: Int, enabled: Bool, priority: Int, trigger: Trigger, eligibility: [Condition], suppressions: [Int],
        holdoutPercent: Double, variants: [(name: String, percent: Double)], instructions: [Instruction], exitOn: [String],
        reenterAfter: TimeSpan?, salt: String, conversions: [Conversion] = []
    ) {
        self.id = id
        self.version = version
        self.enabled = enabled
        self.priority = priority
        self.trigger = trigger
        self.eligibility = eligibility
        self.suppressions = suppressions
        self.holdoutPercent = holdoutPercent
        self.variants = variants
        self.instructions = instructions
        self.exitOn = exitOn
        self.reenterAfter = reenterAfter
        self.salt = salt
        self.conversions = conversions
    }

    public static func == (lhs: Workflow, rhs: Workflow) -> Bool {
        lhs.id == rhs.id && lhs.version == rhs.version && lhs.instructions == rhs.instructions
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(id)
        hasher.combine(version)
    }
}

/// What starts a workflow for a customer.
public enum Trigger: Sendable, Hashable {
    /// A metric over a trait (usage over quota) at or above a ratio, held for `sustained`.
    case ratio(metric: Int, to: [String], atLeast: Double, sustained: TimeSpan)
    /// A metric (which may be an event count over a window) at or above a bound, held for `sustained`.
    case metric(index: Int, atLeast: Double, sustained: TimeSpan)
    /// `offset` before the date in a trait (30 days before the renewal date).
    case beforeDate(trait: [String], offset: TimeSpan)
    /// `offset` after an event (2 days after delivery).
    case afterEvent(name: String, offset: TimeSpan)
}

/// One compiled step of a workflow; nested `then`/`else` lists become jumps.
public struct Instruction: Sendable, Hashable {
    public enum Operation: Sendable, Hashable {
        case send(channel: Channel, template: String?, offer: JSONObject?)
        case task(queue: String, template: String)
        case wait(TimeSpan)
        /// Waits for the event; goes on to the next instruction when it comes, or to `timeout` after `within`.
        case waitFor(event: String, within: TimeSpan, timeout: Int)
        /// Goes on when every condition holds, else to `otherwise`.
        case branch(conditions: [Condition], otherwise: Int)
        case jump(Int)
        case exit
    }

    public var operation: Operation
    /// Where it stands in the file, for outputs and errors: `steps[5].else[0]`.
    public var label: String
}
