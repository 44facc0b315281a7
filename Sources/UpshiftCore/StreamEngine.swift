import HeapModule

/// Runs the engine over a stream of events for many customers, holding their states and a queue
/// of their timers. With ``process(_:)`` alone the clock is the event time (a replay, or a live
/// run on stream time); ``advance(to:)`` moves it on without an event (a live run on the wall
/// clock). Which customers changed is kept until ``takeChanges(_:)``, for a changelog.
///
/// Each customer has a slot, found through a ``CustomerIndex`` once per event; their state,
/// pending due time and changed mark live together in it, and the timer queue refers to slots, so
/// that a timer firing costs no lookup by id.
///
/// Feed events in event-time order (``ReplayInput`` sorts a file's records that way).
public struct StreamEngine: Sendable {
    public private(set) var engine: DecisionEngine
    /// Anonymous ids linked by `alias` calls to the known id whose state they use.
    public private(set) var aliases: [String: String] = [:]
    private var index = CustomerIndex()
    /// Slot-indexed; a forgotten customer's slot is not held until it is reused. Not optionals:
    /// reading one field of an optional element would copy the whole state out.
    private var customers: [Customer] = []
    private var freeSlots: [Int] = []
    private var timers = Heap<PendingTimer>()
    /// See ``warm(_:_:)``.
    private var warmth = 0

    /// Slots changed since the last ``takeChanges(_:)`` (each once: see ``Customer/changed``), and
    /// the ids forgotten since then.
    private var changedSlots: [Int] = []
    private var forgotten: Set<String> = []
    /// Counts assignments and guardrail events per arm, for pauses.
    private var monitor: GuardrailMonitor

    private struct Customer: Sendable {
        var state: CustomerState
        /// The due time queued for it; a queued entry that no longer matches is stale.
        @PackedTime var due: Timestamp? = nil
        var changed = false
        /// False for a slot freed by ``forget(_:)``, whose state is an empty placeholder.
        var held = true
    }

    public init(program: Program) {
        engine = DecisionEngine(program: program)
        monitor = GuardrailMonitor(program: program)
    }

    /// Starts from restored states, with their timers queued.
    public init(program: Program, states: [String: CustomerState]) {
        self.init(program: program)
        for (customerID, state) in states {
            let slot = self.slot(for: customerID, hash: CustomerIndex.hash(customerID), else: state)
            schedule(slot, engine.nextTimer(state))
        }
    }

    /// Every customer's state, by id: a copy, made on each call.
    public var states: [String: CustomerState] {
        Dictionary(uniqueKeysWithValues: customers.lazy.filter(\.held).map { ($0.state.customerID, $0.state) })
    }

    /// A customer's state, if any is held.
    public func state(of customerID: String) -> CustomerState? {
        slot(of: customerID, hash: CustomerIndex.hash(customerID)).map { customers[$0].state }
    }

    /// How many customers have a state.
    public var customerCount: Int { index.count }

    /// Whether any customer changed since the last ``takeChanges(_:)``.
    public var hasChanges: Bool { !changedSlots.isEmpty || !forgotten.isEmpty }

    /// Hands each customer changed since the last call to `body` with their state, in the order
    /// they first changed, then each forgotten one (state nil) in id order: what a changelog
    /// writes, without a lookup by id. The order follows from the input, so a replay of the same
    /// input hands the same sequence.
    public mutating func takeChanges(_ body: (_ customerID: String, _ state: CustomerState?) -> Void) {
        for slot in changedSlots where customers[slot].held && customers[slot].changed {
            customers[slot].changed = false
            body(customers[slot].state.customerID, customers[slot].state)
        }
        // Forgotten, unless the id came back since: then its new state is the change.
        for customerID in forgotten.sorted() where slot(of: customerID, hash: CustomerIndex.hash(customerID)) == nil {
            body(customerID, nil)
        }
        changedSlots = []
        forgotten = []
    }

    /// Fires the timers due at or before the event's time, then processes it.
    public mutating func process(_ event: Event) -> [Output] {
        handle(event).outputs
    }

    /// As ``process(_:)``, also telling what became of the event (applied, duplicate, late).
    public mutating func handle(_ event: Event) -> DecisionEngine.Result {
        handle(event, hash: nil)
    }

    /// As ``handle(_:)``, given the hash of the id whose state the event uses when it is known.
    private mutating func handle(_ event: Event, hash: UInt64?) -> DecisionEngine.Result {
        let fired = advance(to: event.timestamp)
        if event.kind == .alias, let previous = event.previousID { aliases[previous] = event.customerID }
        // The state an anonymous id was linked to; the event itself is not copied to say so.
        let customerID = event.userID == nil ? aliases[event.customerID] ?? event.customerID : event.customerID
        let engine = self.engine
        let slot = self.slot(for: customerID, hash: hash ?? CustomerIndex.hash(customerID), else: engine.newState(for: customerID))
        // Mutated in place in its slot: a copy out and back would copy every array in the state.
        var result = engine.process(event, at: event.timestamp, state: &customers[slot].state)
        if result.disposition != .duplicate { markChanged(slot) }
        schedule(slot, result.nextTimer)
        if monitor.isActive { watch(entered: result.entered, outputsFrom: 0, in: &result.outputs) }
        if !fired.isEmpty { result.outputs = result.outputs.isEmpty ? fired : fired + result.outputs }
        return result
    }

    /// Handles events in order, with the same results as ``handle(_:)`` on each in turn, calling
    /// `body` with each event's result before the next is handled.
    ///
    /// Faster than one at a time when customers are many: before a group of events is handled,
    /// the memory their customers' states live in is read in one short loop, so that the
    /// processor waits for those cache misses together rather than one after another.
    ///
    /// The array is taken over: when the caller keeps no other reference to it, each event is
    /// swapped out of it while it is handled, and back, rather than copied (a copy retains, then
    /// releases, each of its strings and objects). An array still shared is copied once first,
    /// with the same results.
    public mutating func handle(_ events: consuming [Event], _ body: (Event, DecisionEngine.Result) throws -> Void) rethrows {
        var events = events
        try events.withUnsafeMutableBufferPointer { events in
            // Each event is swapped out for this empty one while it is handled, then swapped back.
            var event = Event(kind: .track, customerID: "", messageID: "", timestamp: Timestamp(rawValue: 0))
            for start in stride(from: 0, to: events.count, by: Self.warmGroup) {
                let group = start..<min(start + Self.warmGroup, events.count)
                let hashes = warm(UnsafeBufferPointer(events), group)
                for position in group {
                    swap(&event, &events[position])
                    defer { swap(&event, &events[position]) }
                    // An anonymous id's state may change within the group, with an alias call.
                    let result = handle(event, hash: event.userID == nil ? nil : hashes[position - start])
                    try body(event, result)
                }
            }
        }
    }

    private static let warmGroup = 16

    /// Reads the index entries, slots and arrays the events' customers will need, and returns the
    /// hashes of their ids. What is read is summed into ``warmth`` only so that the reads are not
    /// optimized away.
    private mutating func warm(_ events: UnsafeBufferPointer<Event>, _ group: Range<Int>) -> [UInt64] {
        var hashes: [UInt64] = []
        hashes.reserveCapacity(group.count)
        for position in group {
            let linked = events[position].userID == nil ? aliases[events[position].customerID] : nil
            hashes.append(CustomerIndex.hash(linked ?? events[position].customerID))
        }
        var sum = 0
        for hash in hashes {
            guard let slot = index.firstSlot(hash: hash) else { continue }
            sum &+= customers[slot].state.customerID.utf8.count
            // The slot's last field too: a slot spans two cache lines, and the trait facts that
            // every event checks reach into the second.
            sum &+= customers[slot].held ? 1 : 0
            sum &+= Int(truncatingIfNeeded: customers[slot].state.block.hotLines)
        }
        warmth &+= sum
        return hashes
    }

    /// Removes everything held about a customer (a GDPR delete): state, pending timers and the
    /// aliases that pointed at them.
    public mutating func forget(_ customerID: String) {
        let hash = CustomerIndex.hash(customerID)
        if let slot = slot(of: customerID, hash: hash) {
            index.remove(hash: hash, slot: slot)
            customers[slot] = Customer(state: CustomerState(customerID: "", program: Program()), held: false)
            freeSlots.append(slot)
        }
        forgotten.insert(customerID)
        aliases = aliases.filter { $0.key != customerID && $0.value != customerID }
    }

    /// Forgets every customer idle for the program's idle TTL at `time` (no event for that long
    /// and nothing pending), and returns how many went.
    @discardableResult
    public mutating func expireIdle(at time: Timestamp) -> Int {
        // Lazily: a filter first would copy every idle customer's state only to take its id.
        let engine = self.engine
        let idle = Array(customers.lazy.filter { $0.held && engine.isIdle($0.state, at: time) }.map(\.state.customerID))
        idle.forEach { forget($0) }
        return idle.count
    }

    /// Fires every customer's timers due at or before `time`, in due order.
    public mutating func advance(to time: Timestamp) -> [Output] {
        var outputs: [Output] = []
        while let next = timers.min, next.due <= time {
            timers.removeMin()
            // Stale: rescheduled since, or the slot now holds another customer.
            guard customers[next.slot].held, customers[next.slot].due == next.due, customers[next.slot].state.customerID == next.customerID
            else { continue }
            let engine = self.engine
            let start = outputs.count
            let (entered, nextTimer) = engine.fire(upTo: next.due, state: &customers[next.slot].state, into: &outputs)
            markChanged(next.slot)
            schedule(next.slot, nextTimer)
            if monitor.isActive { watch(entered: entered, outputsFrom: start, in: &outputs) }
        }
        return outputs
    }

    /// Fires every timer still pending, however far ahead: the stream's end, with nothing more to wait for.
    public mutating func finish() -> [Output] {
        var outputs: [Output] = []
        // Firing a timer may set a later one (a wait after a send): go on until none is left.
        while let last = timers.max?.due { outputs += advance(to: last) }
        return outputs
    }

    /// Treatment arms paused by a guardrail, with the guardrail's name.
    public var pauses: [ArmKey: String] { engine.paused }

    /// Pauses an arm (decided here, or read from the control topic when another partition decided
    /// it), unless the program has changed since: a changed version or guardrail resumes it.
    @discardableResult
    public mutating func apply(_ pause: Pause) -> Bool {
        guard pause.holds(in: engine.program) else { return false }
        engine.paused[pause.key] = pause.guardrail
        return true
    }

    /// Counts the treatment assignments a step made and the guardrail events it attributed (its
    /// outputs are those from `start` on), and pauses an arm whose rate goes over its bound,
    /// appending the pause to the outputs.
    private mutating func watch(entered: [ArmKey], outputsFrom start: Int, in outputs: inout [Output]) {
        for key in entered { monitor.assign(key) }
        // By index, over the step's outputs only: `for output in outputs` would copy each output
        // to test its kind.
        for position in start..<outputs.count where outputs[position].kind == .guardrail {
            let output = outputs[position]
            guard let (pause, rate, sample) = monitor.observe(output), apply(pause) else { continue }
            let decisionID = StableHash.hex(StableHash.of([pause.key.description, pause.guardrail, String(pause.bound), String(pause.minimumSample), "pause"]))
            var record = Output(kind: .pause, decisionID: decisionID, customerID: output.customerID, eventTime: output.eventTime, decisionTime: output.decisionTime)
            record.workflowID = pause.key.workflow
            record.workflowVersion = pause.key.version
            record.variant = pause.key.arm
            record.reasons = [pause.guardrail]
            record.evidence = [
                "rate": .number(rate), "sample": .number(Double(sample)), "pause_above": .number(pause.bound),
                "minimum_sample": .number(Double(pause.minimumSample)),
            ]
            outputs.append(record)
        }
    }

    /// The slot of the customer whose id hashes to `hash`, made (with `state`) if they have none.
    private mutating func slot(for customerID: String, hash: UInt64, else state: @autoclosure () -> CustomerState) -> Int {
        if let slot = slot(of: customerID, hash: hash) { return slot }
        let customer = Customer(state: state())
        let slot: Int
        if let free = freeSlots.popLast() {
            slot = free
            customers[slot] = customer
        } else {
            slot = customers.count
            customers.append(customer)
        }
        index.insert(hash: hash, slot: slot)
        return slot
    }

    /// The slot holding the customer, if any.
    private func slot(of customerID: String, hash: UInt64) -> Int? {
        index.slot(hash: hash) { customers[$0].state.customerID == customerID }
    }

    private mutating func markChanged(_ slot: Int) {
        guard !customers[slot].changed else { return }
        customers[slot].changed = true
        changedSlots.append(slot)
    }

    /// Queues a customer's due time once; an entry left behind by a change is skipped when it comes up.
    private mutating func schedule(_ slot: Int, _ due: Timestamp?) {
        let previous = customers[slot].due
        customers[slot].due = due
        if let due, previous != due { timers.insert(PendingTimer(due: due, slot: slot, customerID: customers[slot].state.customerID)) }
    }
}

/// A queued due time. Ties fire in customer id order, whatever the slots, so that a restored
/// engine fires them as the one that wrote the state did.
private struct PendingTimer: Comparable, Sendable {
    var due: Timestamp
    var slot: Int
    var customerID: String

    static func < (lhs: Self, rhs: Self) -> Bool { (lhs.due, lhs.customerID) < (rhs.due, rhs.customerID) }
    static func == (lhs: Self, rhs: Self) -> Bool { lhs.due == rhs.due && lhs.customerID == rhs.customerID }
}

/// A file of JSON lines read into events in event-time order, with the lines that failed.
public struct ReplayInput: Sendable {
    public var events: [Event] = []
    public var rejected: [(line: Int, error: EventError)] = []

    /// Decodes each non-empty line; sorts the events by event time, keeping file order for ties.
    public init(lines: some Sequence<Substring>, decoder: EventDecoder = EventDecoder()) {
        var numbered: [(Int, Event)] = []
        for (offset, line) in lines.enumerated() where !line.allSatisfy(\.isWhitespace) {
            do {
                numbered.append((offset, try decoder.decode(String(line))))
            } catch {
                rejected.append((offset + 1, error))
            }
        }
        events = numbered.sorted { ($0.1.timestamp, $0.0) < ($1.1.timestamp, $1.0) }.map(\.1)
    }
}
