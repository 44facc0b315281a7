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
