import Foundation
import Kafka
import Synchronization
import UpshiftCore

/// The Upshift stream processor: a consumer-group member that runs the decision engine over its
/// input partitions and writes decisions, changelog and input offsets in one Kafka transaction.
///
/// Threading: all of the work happens on one dedicated ``KafkaThread``, in a loop of poll,
/// process, produce and, every commit interval, commit. Rebalance callbacks run inside `poll` on
/// that thread, so partition tasks are owned by it alone and need no lock; only ``stop()`` and
/// ``statistics`` cross threads, through atomics and a mutex. Nothing here blocks Swift
/// concurrency's cooperative threads: ``run()`` awaits the loop's thread.
///
/// Exactly-once: each transaction holds the outputs and dead letters of the records read since
/// the last commit, the changelog records of the customers they changed, one commit marker per
/// partition (see ``Changelog``), and the input offsets sent with the group metadata (KIP-447).
/// An abortable error aborts it and rebuilds every task from its changelog, rewinding the input to
/// the last committed offsets; a fatal one (fencing) stops the processor with that error.
public final class StreamProcessor: Sendable {
    private let configuration: RuntimeConfiguration
    private let program: Program
    private let stopping = Atomic<Bool>(false)
    private let counters = Mutex(Statistics())
    private let log: @Sendable (String) -> Void

    /// Counts since start: records in = processed + dead-lettered. Records read again after an
    /// abort count again.
    public struct Statistics: Sendable, Hashable {
        /// The sum of the input offsets the last successful commit recorded over the assigned
        /// partitions: how far the input is done for good.
        public var committedOffsets: Int64 = 0
        public var recordsIn = 0
        public var processed = 0
        public var deadLettered = 0
        public var outputs = 0
        public var transactionsCommitted = 0
        public var transactionsAborted = 0
        public var restoredCustomers = 0
    }

    public var statistics: Statistics { counters.withLock { $0 } }

    /// - Parameter log: receives one line per lifecycle event (assigned, restored, revoked, aborted, stopped).
    public init(configuration: RuntimeConfiguration, program: Program, log: @escaping @Sendable (String) -> Void = { _ in }) {
        self.configuration = configuration
        self.program = program
        self.log = log
    }

    /// Asks the loop to finish its batch, commit, leave the group and return.
    public func stop() {
        stopping.store(true, ordering: .relaxed)
    }

    /// Runs until ``stop()``, or until a fatal error, which it throws.
    public func run() async throws {
        let thread = KafkaThread(name: "upshift-\(configuration.instanceID)")
        try await thread.run { [self] in
            try Session(processor: self).run()
        }
    }

    fileprivate func count(_ update: (inout Statistics) -> Void) {
        counters.withLock { update(&$0) }
    }

    fileprivate var isStopping: Bool { stopping.load(ordering: .relaxed) }

    /// One run of the processor: its clients, tasks and transaction. Confined to the processor's
    /// thread (the rebalance callback runs there too, inside `poll`), hence unchecked Sendable.
    private final class Session: @unchecked Sendable {
        let processor: StreamProcessor
        let configuration: RuntimeConfiguration
        let consumer: KafkaConsumer
        let producer: KafkaProducer
        let records: OutputRecords
        let decoder: EventDecoder
        /// Names this run's commit markers in the changelog.
        let session: String
        var tasks: [Int32: PartitionTask] = [:]
        var transaction = 0
        var inTransaction = false
        var aborted: [Int] = []
        var lastCommit = ContinuousClock.now
        /// An error raised inside the rebalance callback, thrown once `poll` returns.
        var callbackError: Error?

        init(processor: StreamProcessor) throws {
            self.processor = processor
            configuration = processor.configuration
            var consumerSettings = configuration.kafka
            consumerSettings.groupID = configuration.applicationID
            consumerSettings.enableAutoCommit = false
            consumerSettings.enableAutoOffsetStore = false
            consumerSettings.autoOffsetReset = consumerSettings.autoOffsetReset ?? .earliest
            consumerSettings.isolationLevel = .readCommitted
            if configuration.staticMembership { consumerSettings.groupInstanceID = configuration.instanceID }
            consumer = try KafkaConsumer(configuration: consumerSettings)
            var producerSettings = configuration.kafka
            if configuration.guarantee == .exactlyOnce {
                producerSettings.transactionalID = "\(configuration.applicationID)-\(configuration.instanceID)"
            }
            producer = try KafkaProducer(configuration: producerSettings)
            records = OutputRecords(topics: configuration.topics, source: "upshift/\(configuration.applicationID)")
            decoder = EventDecoder(maximumBytes: configuration.maximumRecordBytes)
            session = "\(configuration.instanceID)-\(UInt64(Date().timeIntervalSince1970 * 1000))-\(UInt32.random(in: 0...UInt32.max))"
        }

        var log: @Sendable (String) -> Void { processor.log }

        func run() throws {
            if configuration.guarantee == .exactlyOnce { try producer.initTransactions() }
            try consumer.subscribe(to: configuration.inputTopics) { [weak self] event in self?.rebalanced(event) }
            log("started \(session), reading \(configuration.inputTopics.joined(separator: ", "))")
            while !processor.isStopping {
                try step()
            }
            try commit()
            try consumer.close()
            _ = try producer.flush(timeout: .seconds(10))
            log("stopped")
        }

        func step() throws {
            let batch = try consumer.poll(maxRecords: 2_000, timeout: .milliseconds(50))
            if let error = callbackError {
                callbackError = nil
                throw error
            }
            do {
                try process(batch)
            } catch let error as KafkaError where error.kind != .fatal {
                // The transaction cannot go on (librdkafka refuses records once it must abort):
                // abort, rewind, and read the rest of this batch again from the rewound position.
                try abort(because: error)
                return
            }
            _ = producer.deliveries()
            if ContinuousClock.now - lastCommit >= configuration.commitInterval { try commit() }
        }

        func process(_ batch: [ConsumerRecord]) throws {
            for record in batch {
                processor.count { $0.recordsIn += 1 }
                guard tasks[record.partition] != nil else {
                    // Every assigned partition has a task once restored; a record without one must
                    // not be dropped quietly, so the run stops (its offset is not committed).
                    throw KafkaError(
                        code: .state, message: "no task for \(record.topicPartition): its restore did not complete",
                        operation: "process record at offset \(record.offset)")
                }
                try begin()
                switch tasks[record.partition]!.process(record, decoder: decoder) {
                case .processed(let outputs):
                    processor.count { $0.processed += 1 }
                    try send(outputs)
                case .deadLetter(let field, let reason, let outputs):
                    processor.count { $0.deadLettered += 1 }
                    try producer.send(records.deadLetter(record, field: field, reason: reason))
                    try send(outputs)
                }
            }
            if configuration.clock == .wallClock {
                let now = Timestamp(milliseconds: Int64(Date().timeIntervalSince1970 * 1000))
                for partition in tasks.keys.sorted() {
                    let outputs = tasks[partition]!.advance(to: now)
                    if tasks[partition]!.hasUncommittedWork { try begin() }
                    try send(outputs)
                }
            }
        }

        func begin() throws {
            guard !inTransaction else { return }
            transaction += 1
            if configuration.guarantee == .exactlyOnce { try producer.beginTransaction() }
            inTransaction = true
        }

        func send(_ outputs: [Output]) throws {
            for output in outputs { try producer.send(records.record(for: output)) }
            processor.count { $0.outputs += outputs.count }
        }

        /// Commits the open transaction: changelog records and markers, input offsets, then the
        /// commit itself. An abortable failure aborts and rewinds; a fatal one is thrown.
        func commit() throws {
            lastCommit = ContinuousClock.now
            guard inTransaction else { return }
            do {
                let offsets = tasks.keys.sorted().flatMap { partition in
                    tasks[partition]!.offsets.map { TopicPartitionOffset($0.key, KafkaOffset($0.value)) }
                }
                // Offsets first: a refusal then aborts before any commit marker is on its way.
                if configuration.guarantee == .exactlyOnce, !offsets.isEmpty {
                    try producer.sendOffsets(offsets, group: try consumer.groupMetadata())
                }
                for partition in tasks.keys.sorted() {
                    let changelog = tasks[partition]!.changelog(
                        topic: configuration.topics.changelog, session: session, transaction: transaction, aborted: aborted)
                    for record in changelog { try producer.send(record) }
                }
                switch configuration.guarantee {
                case .exactlyOnce:
                    try producer.commitTransaction()
                case .atLeastOnce:
                    let failures = try producer.flush(timeout: .seconds(30)).filter { (try? $0.result.get()) == nil }
                    if !failures.isEmpty {
                        throw KafkaError(code: .failed, message: "\(failures.count) records were not delivered", operation: "flush", kind: .abortable)
                    }
                    if !offsets.isEmpty { try consumer.commit(offsets) }
                }
                inTransaction = false
                let committed = offsets.reduce(Int64(0)) { $0 + $1.offset.rawValue }
                processor.count {
                    $0.transactionsCommitted += 1
                    $0.committedOffsets = committed
                }
            } catch let error as KafkaError where error.kind == .fatal {
                log("stopping: \(error)")
                throw error
            } catch let error as KafkaError {
                try abort(because: error)
            }
        }

        /// Drops the open transaction and rebuilds every task from the changelog, which rewinds
        /// the input to the last committed offsets.
        func abort(because error: KafkaError) throws {
            log("aborting transaction \(transaction): \(error)")
            if configuration.guarantee == .exactlyOnce { try producer.abortTransaction() }
            aborted.append(transaction)
            inTransaction = false
            processor.count { $0.transactionsAborted += 1 }
            restore(tasks.keys.sorted())
        }

        // MARK: Rebalancing

        /// Runs inside `poll`: a revocation commits first, while the partitions are still ours;
        /// an assignment restores the new partitions before any of their records is read.
        func rebalanced(_ event: RebalanceEvent) {
            do {
                switch event {
                case .assigned(let partitions):
                    log("assigned \(partitions.map(\.description).joined(separator: ", "))")
                    restore(Array(Set(partitions.map(\.partition))).sorted())
                case .revoked(let partitions, let lost):
                    log("revoked \(partitions.map(\.description).joined(separator: ", "))\(lost ? " (lost)" : "")")
                    if lost {
                        if inTransaction, configuration.guarantee == .exactlyOnce { try producer.abortTransaction() }
                        inTransaction = false
                    } else {
                        try commit()
                    }
                    for partition in Set(partitions.map(\.partition)) { tasks[partition] = nil }
                }
            } catch {
                callbackError = error
            }
        }

        /// Rebuilds these partitions' tasks from the changelog and points the consumer at the
        /// offsets their last commit recorded.
        func restore(_ partitions: [Int32]) {
            var positions: [TopicPartitionOffset] = []
            for partition in partitions {
                let started = ContinuousClock.now
                do {
                    let restorer = try readChangelog(partition)
                    let task = PartitionTask(partition: partition, program: processor.program, restored: restorer)
                    tasks[partition] = task
                    processor.count { $0.restoredCustomers += task.engine.states.count }
                    positions += try startingPositions(partition, restored: task.offsets)
                    log("restored partition \(partition): \(task.engine.states.count) customers from \(restorer.recordsRead) changelog records in \(ContinuousClock.now - started)"
                        + (restorer.unusable > 0 ? "; \(restorer.unusable) records could not be used" : ""))
                } catch {
                    callbackError = error
                    log("could not restore partition \(partition): \(error)")
                }
            }
            guard !positions.isEmpty else { return }
            do {
                try consumer.seek(positions)
            } catch {
                log("could not seek to the restored offsets: \(error)")
            }
        }

        /// Where to read each assigned input partition with this number from: the restored offset,
        /// else the group's committed offset, else the reset policy's end of the partition.
        func startingPositions(_ partition: Int32, restored: [TopicPartition: Int64]) throws -> [TopicPartitionOffset] {
            let inputs = try consumer.assignment().filter { $0.partition == partition && $0.topic != configuration.topics.changelog }
            let missing = inputs.filter { restored[$0] == nil }
            let committed = missing.isEmpty ? [] : try consumer.committed(missing)
            let reset: KafkaOffset = configuration.kafka.autoOffsetReset == .latest ? .end : .beginning
            return inputs.map { input in
                if let offset = restored[input] { return TopicPartitionOffset(input, KafkaOffset(offset)) }
                let stored = committed.first { $0.topicPartition == input }?.offset
                return TopicPartitionOffset(input, stored.flatMap { $0.isAbsolute ? $0 : nil } ?? reset)
            }
        }

        func readChangelog(_ partition: Int32) throws -> Changelog.Restorer {
            var settings = configuration.kafka
            settings.groupID = "\(configuration.applicationID)-restore"
            settings.enableAutoCommit = false
            settings.isolationLevel = .readCommitted
            let reader = try KafkaConsumer(configuration: settings)
            defer { try? reader.close() }
            let changelog = TopicPartition(configuration.topics.changelog, partition)
            var restorer = Changelog.Restorer(program: processor.program, aborted: [session: Set(aborted)])
            let (low, end) = try reader.watermarks(of: changelog)
            if end > low {
                try reader.assign([TopicPartitionOffset(changelog, .beginning)])
                // Read up to the end as it was when the restore began. The position, not the last
                // record's offset, says how far: transaction markers take offsets and are never returned.
                func position() throws -> Int64 {
                    let offset = try reader.position([changelog]).first?.offset ?? .invalid
                    return offset.isAbsolute ? offset.rawValue : low
                }
                while try position() < end {
                    let records = try reader.poll(maxRecords: 5_000, timeout: .seconds(5))
                    if records.isEmpty, try position() < end {
                        throw KafkaError(
                            code: .timedOut, message: "changelog \(changelog) stopped at \(try position()) of \(end)", operation: "restore")
                    }
                    for record in records { restorer.read(record) }
                }
            }
            restorer.finish()
            return restorer
        }
    }
}
