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

    /// Sets a time trigger due at `due` (nil: not due at all), for the date or the event at `from`.
    mutating func schedule(_ due: Timestamp?, from: Timestamp) {
        scheduled = due
        scheduledFrom = from
    }

    /// The trigger's condition does not hold.
    mutating func forgetCondition() {
        conditionSince = nil
        sustainedChecked = false
    }

    /// The trigger's condition holds at `time`: since when it has held (from now, unless it held
    /// already), and whether that is for `sustained` or longer, which marks it checked.
    mutating func noteCondition(at time: Timestamp, sustained: TimeSpan) -> (since: Timestamp, heldLongEnough: Bool) {
        let since = conditionSince ?? time
        conditionSince = since
        guard time >= since + sustained else { return (since, false) }
        sustainedChecked = true
        return (since, true)
    }

    /// When a held condition has been held long enough to be checked again without an event.
    func sustainedCheck(_ sustained: TimeSpan?) -> Timestamp? {
        guard let since = conditionSince, let sustained, sustained > .zero, !sustainedChecked else { return nil }
        return since + sustained
    }
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
