import Kafka
import UpshiftCore

/// One input partition's share of the work: the states of the customers hashed to it, their
/// timers, and how far it has read. Owned by the processor's thread; never shared.
struct PartitionTask {
    let partition: Int32
    var engine: StreamEngine
    /// The next offset to read, per input topic partition with this number.
    var offsets: [TopicPartition: Int64]
    /// The highest event time seen: the clock in stream-time mode.
    var streamTime: Timestamp?
    /// Whether anything was read or fired since the last commit: idle partitions write no marker.
    var hasUncommittedWork = false
    /// The program's layout, written in every commit marker so that a restore under changed
    /// workflow files finds each state's metrics and workflows by name.
    let layout: StateLayout
    /// Encodes this partition's changes, and knows the size of its states as last written.
    let changelog: ChangelogWriter

    init(partition: Int32, program: Program, restored: Changelog.Restorer, changelogTopic: String) {
        self.partition = partition
        engine = StreamEngine(program: program, states: restored.states)
        layout = StateLayout(program)
        changelog = ChangelogWriter(topic: changelogTopic, partition: partition, restoredSizes: restored.sizes)
        offsets = restored.lastCommit?.offsets ?? [:]
        streamTime = restored.lastCommit?.streamTime
    }

    /// What became of one input record.
    enum Outcome {
        case processed([Output], event: Event.Kind, time: Timestamp)
        /// The record goes to the dead-letter topic for this reason; any outputs still count.
        case deadLetter(Rejection, outputs: [Output])
        /// The record is before the next offset this task expects, so its effect is already in
        /// the state: it was read again, not applied again. See ``process(_:decoder:)``.
        case alreadyRead
    }

    /// What became of each of `records` (this partition's, in their order), in that order. The
    /// records are decoded first and the events handed to the engine together, which handles
    /// them faster than one by one (see `StreamEngine.handle(_:_:)`) with the same results.
    ///
    /// A record before the offset the task expects next is left alone: the state holds its
    /// effect already, and applying it again would count it twice (or late). A consumer reads
    /// one only when its position went back behind the task's, as when librdkafka's lookup of
    /// the group's committed offset lands after the seek to the restored one (librdkafka issue
    /// #2256) and the partition starts at that older offset, or by the reset policy.
    mutating func process(_ records: ArraySlice<ConsumerRecord>, decoder: EventDecoder) -> [Outcome] {
        enum Read {
            /// The record's event is next in `events`.
            case event
            case rejected(Rejection)
            case alreadyRead
        }
        var reads: [Read] = []
        var events: [Event] = []
        reads.reserveCapacity(records.count)
        events.reserveCapacity(records.count)
        for record in records {
            if let next = offsets[record.topicPartition], record.offset < next {
                reads.append(.alreadyRead)
                continue
            }
            offsets[record.topicPartition] = record.offset + 1
            hasUncommittedWork = true
            switch Self.decode(record, decoder) {
            case .success(let event):
                events.append(event)
                reads.append(.event)
            case .failure(let rejection):
                reads.append(.rejected(rejection))
            }
        }
        var handled: [Outcome] = []
        handled.reserveCapacity(events.count)
        engine.handle(consume events) { event, result in
            streamTime = max(streamTime ?? event.timestamp, event.timestamp)
            handled.append(Self.outcome(of: event, result))
        }
        var next = handled.makeIterator()
        return reads.map { read in
            switch read {
            case .event: next.next()!
            case .rejected(let rejection): .deadLetter(rejection, outputs: [])
            case .alreadyRead: .alreadyRead
            }
        }
    }

    private static func decode(_ record: ConsumerRecord, _ decoder: EventDecoder) -> Result<Event, Rejection> {
        guard let value = record.value else {
            return .failure(Rejection(field: "record", problem: "no_value", reason: "the record has no value"))
        }
        do {
            return .success(try decoder.decode(value))
        } catch {
            return .failure(Rejection(field: error.field, problem: error.problem.rawValue, reason: error.reason))
        }
    }

    private static func outcome(of event: Event, _ result: DecisionEngine.Result) -> Outcome {
        let outputs = result.outputs.filter { $0.kind != .lateEvent }
        if result.disposition == .late, let late = result.outputs.first(where: { $0.kind == .lateEvent }) {
            let reason = "late event: \(late.reasons.joined(separator: "; "))"
            return .deadLetter(Rejection(field: "timestamp", problem: "late", reason: reason), outputs: outputs)
        }
        return .processed(outputs, event: event.kind, time: event.timestamp)
    }

    /// Fires the timers due by `time`.
    mutating func advance(to time: Timestamp) -> [Output] {
        let outputs = engine.advance(to: time)
        if engine.hasChanges { hasUncommittedWork = true }
        return outputs
    }

    /// Forgets the customers idle for the program's idle TTL at `time`, and returns how many went.
    mutating func expireIdle(at time: Timestamp) -> Int {
        let expired = engine.expireIdle(at: time)
        if expired > 0 { hasUncommittedWork = true }
        return expired
    }

    /// What changed since the last commit, for the changelog, with the commit marker's contents;
    /// nil when nothing was read or fired since.
    mutating func takeChanges(transaction: Int, aborted: [Int]) -> ChangelogBatch? {
        guard hasUncommittedWork else { return nil }
        hasUncommittedWork = false
        var changes: [(customerID: String, state: CustomerState?)] = []
        engine.takeChanges { customerID, state in changes.append((customerID, state)) }
        return ChangelogBatch(
            writer: changelog, changes: changes,
            commit: Changelog.Commit(transaction: transaction, aborted: aborted, offsets: offsets, streamTime: streamTime, layout: layout))
    }
}

/// Why an input record goes to the dead-letter topic.
struct Rejection: Error, Sendable, Hashable {
    /// The field at fault, or `record`.
    var field: String
    /// From a fixed set (``EventError/Problem``'s values, `no_value` and `late`): a metric label
    /// and a header to route on.
    var problem: String
    /// For people: what was wrong, with the offending value.
    var reason: String
}
