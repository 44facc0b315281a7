import CoreMetrics
import Foundation
import Kafka
import Logging
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
///
/// Commits overlap processing: under exactly-once, the processing thread only takes each task's
/// input offsets and changed states; a commit thread encodes the states into changelog records,
/// sends them and the offsets, and makes the commit call (which waits for the brokers), while the
/// processing thread reads on, holding the records it makes until the commit lands and the next
/// transaction begins. Revocations, stops and aborts wait for it.
///
/// Outages: librdkafka reconnects on its own; a Kafka call that fails with a retriable error (a
/// broker down, a timeout) is called again with backoff, and the processor logs once when the
/// brokers go down and once when they are back. A stop commits, leaves the group and flushes
/// within ``RuntimeConfiguration/shutdownTimeout``.
public final class StreamProcessor: Sendable {
    private let configuration: RuntimeConfiguration
    private let program: Program
    private let stopping = Atomic<Bool>(false)
    private let brokersDown = Atomic<Bool>(false)
    private let counters = Mutex(Statistics())
    private let logger: Logger
    private let metrics: ProcessorMetrics

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
        /// Customers forgotten after the program's idle TTL.
        public var expiredCustomers = 0
        /// Records read again behind a partition's restored or current position, and not applied
        /// again (see ``PartitionTask/process(_:decoder:)``); not counted in `recordsIn`.
        public var readAgain = 0
        /// Input partitions held and restored: those with a task.
        public var assignedPartitions = 0
        /// True once the processor holds a restored assignment (possibly of no partitions), false
        /// while it joins, restores or waits for partitions after a revocation.
        public var isReady = false
    }

    public var statistics: Statistics { counters.withLock { $0 } }

    /// - Parameters:
    ///   - logger: receives one line per lifecycle event (started, assigned, restored, revoked,
    ///     aborted, brokers down and up, stopped) and librdkafka's own log lines, never one per record.
    ///   - metrics: where counts, gauges and timings go (see the README for the list).
    public init(
        configuration: RuntimeConfiguration, program: Program,
        logger: Logger = Logger(label: "upshift", factory: { _ in SwiftLogNoOpLogHandler() }),
        metrics: any MetricsFactory = MetricsSystem.factory
    ) {
        self.configuration = configuration
        self.program = program
        self.metrics = ProcessorMetrics(factory: metrics)
        var logger = logger
        logger[metadataKey: "instance"] = "\(configuration.instanceID)"
        self.logger = logger
    }

    /// Asks the loop to finish its batch, commit, leave the group and return.
    public func stop() {
        stopping.store(true, ordering: .relaxed)
    }

    /// Runs until ``stop()``, or until an error it cannot get past, which it throws: a fatal
    /// `KafkaError` (fenced by a newer instance with the same id), a ``ProcessorError`` (topics
    /// not co-partitioned, a shutdown past its timeout), or a failed restore.
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

    /// Logs once when the brokers become unreachable; librdkafka reports it from either client.
    fileprivate func clientFailed(_ error: KafkaError) {
        if error.code == .allBrokersDown {
            if !brokersDown.exchange(true, ordering: .relaxed) {
                logger.warning("brokers down", metadata: ["error": "\(error)"])
            }
        } else if error.kind == .fatal {
            logger.error("client failed", metadata: ["error": "\(error)"])
        }
    }

    /// librdkafka's log lines, at the matching level, with the client's name.
    fileprivate func clientLogged(_ line: ClientLogLine) {
        let level: Logger.Level = switch line.level {
        case ...3: .error
        case 4: .warning
        case 5...6: .info
        default: .debug
        }
        logger.log(level: level, "\(line.message)", metadata: ["source": "librdkafka", "facility": "\(line.facility)"])
    }

    fileprivate func clientReported(_ json: String) {
        if let statistics = try? ClientStatistics(json: json) { metrics.client(statistics) }
    }

    fileprivate var areBrokersDown: Bool { brokersDown.load(ordering: .relaxed) }

    /// Logs once when a call reaches the brokers again after they were down.
    fileprivate func brokersAnswered() {
        if brokersDown.exchange(false, ordering: .relaxed) { logger.notice("brokers up") }
    }

    /// One run of the processor: its clients, tasks and transaction. Confined to the processor's
    /// thread (the rebalance callback runs there too, inside `poll`), hence unchecked Sendable.
    private final class Session: @unchecked Sendable {
        let processor: StreamProcessor
        let configuration: RuntimeConfiguration
        let consumer: KafkaConsumer
        let producer: KafkaProducer
        let admin: KafkaAdmin
        /// Reads the control topic: pauses decided here and by other instances.
        let control: KafkaConsumer
        let records: OutputRecords
        let decoder: EventDecoder
        /// Names this run's commit markers in the changelog.
        let session: String
        var tasks: [Int32: PartitionTask] = [:]
        /// Arms paused by a guardrail, applied to every task, present and future.
        var pauses: [ArmKey: Pause] = [:]
        var transaction = 0
        var inTransaction = false
        var aborted: [Int] = []
        var lastCommit = ContinuousClock.now
        var lastExpiry = ContinuousClock.now
        /// When the brokers were last asked for metadata while they were down.
        var lastProbe = ContinuousClock.now
        /// Set once a stop is under way: retries give up at this instant.
        var shutdownDeadline: ContinuousClock.Instant?
        /// The last consumer error logged, so that a repeated one is logged once.
        var lastConsumerError: String?
        /// Records whose delivery failed since the last commit.
        var undelivered = 0
        /// An error raised inside the rebalance callback, thrown once `poll` returns.
        var callbackError: Error?
        /// The commit running on the commit thread, if one is.
        var inFlight: InFlightCommit?
        /// Records made while a commit is in flight, for the next transaction.
        var held: [ProducerRecord] = []
        /// Whether work done while a commit was in flight needs a transaction of its own.
        var pendingWork = false
        let committer = DispatchQueue(label: "upshift-commit")

        /// How long one blocking transaction call may take before it is retried: 5 s, or what is
        /// left of a shutdown's time.
        var callTimeout: Duration {
            guard let shutdownDeadline else { return .seconds(5) }
            return max(min(.seconds(5), shutdownDeadline - ContinuousClock.now), .milliseconds(1))
        }

        init(processor: StreamProcessor) throws {
            self.processor = processor
            configuration = processor.configuration
            let events = ClientEvents(
                onError: { [processor] in processor.clientFailed($0) },
                onStatistics: { [processor] in processor.clientReported($0) },
                onLog: { [processor] in processor.clientLogged($0) })
            consumer = try KafkaConsumer(configuration: configuration.consumerSettings, events: events)
            producer = try KafkaProducer(configuration: configuration.producerSettings, events: events)
            admin = try KafkaAdmin(configuration: configuration.kafka, events: ClientEvents(onLog: { [processor] in processor.clientLogged($0) }))
            var controlSettings = configuration.kafka
            controlSettings.groupID = "\(configuration.applicationID)-control"
            controlSettings.isolationLevel = .readCommitted
            controlSettings.enableAutoCommit = false
            control = try KafkaConsumer(configuration: controlSettings, events: ClientEvents(onLog: { [processor] in processor.clientLogged($0) }))
            records = OutputRecords(topics: configuration.topics, source: "upshift/\(configuration.applicationID)")
            decoder = EventDecoder(maximumBytes: configuration.maximumRecordBytes)
            session = "\(configuration.instanceID)-\(UInt64(Date().timeIntervalSince1970 * 1000))-\(UInt32.random(in: 0...UInt32.max))"
        }

        var logger: Logger { processor.logger }

        func run() throws {
            try verifyLayout(of: configuration.inputTopics)
            try loadPauses()
            if configuration.guarantee == .exactlyOnce {
                try retrying("initialize transactions") { () throws(KafkaError) in try producer.initTransactions(timeout: callTimeout) }
            }
            try consumer.subscribe(to: configuration.inputTopics) { [weak self] event in self?.rebalanced(event) }
            logger.info(
                "started",
                metadata: ["session": "\(session)", "inputs": "\(configuration.inputTopics.joined(separator: ","))",
                           "guarantee": "\(configuration.guarantee.rawValue)", "clock": "\(configuration.clock.rawValue)"])
            while !processor.isStopping {
                try step()
            }
            try shutDown()
        }

        /// Commits, leaves the group and flushes, giving up at the shutdown timeout.
        func shutDown() throws {
            let started = ContinuousClock.now
            let deadline = shutdownDeadline ?? started + configuration.shutdownTimeout
            shutdownDeadline = deadline
            do {
                try commit(synchronously: true)
                try consumer.close()
                let remaining = deadline - ContinuousClock.now
                let lost = try producer.flush(timeout: max(remaining, .milliseconds(1))).filter { (try? $0.result.get()) == nil }
                if !lost.isEmpty {
                    logger.error("records not delivered at shutdown", metadata: ["count": "\(lost.count)"])
                }
            } catch let error as KafkaError where error.kind != .fatal && ContinuousClock.now >= deadline {
                logger.error("shutdown timed out", metadata: ["error": "\(error)"])
                throw ProcessorError.shutdownTimedOut(after: configuration.shutdownTimeout)
            }
            logger.info("stopped", metadata: ["duration": "\(ContinuousClock.now - started)"])
        }

        func step() throws {
            // Before reading: a commit that failed rewinds the input, and a batch read before the
            // rewind would be processed against the restored state.
            try land(waiting: false)
            let batch: [ConsumerRecord]
            do {
                batch = try consumer.poll(maxRecords: 2_000, timeout: .milliseconds(50))
            } catch where error.kind == .fatal {
                logger.critical("stopping: the consumer failed", metadata: ["error": "\(error)"])
                throw error
            } catch {
                // librdkafka goes on by itself (a topic deleted, a broker gone): report and read on.
                if lastConsumerError != error.description {
                    lastConsumerError = error.description
                    logger.warning("consumer error", metadata: ["error": "\(error)"])
                }
                batch = []
            }
            if let error = callbackError {
                callbackError = nil
                throw error
            }
            if !batch.isEmpty { processor.brokersAnswered() }
            readControl()
            if processor.areBrokersDown, ContinuousClock.now - lastProbe >= .seconds(1) {
                // With nothing to read or commit, nothing else would notice the brokers coming back.
                lastProbe = ContinuousClock.now
                if (try? admin.listTopics(timeout: .milliseconds(500))) != nil { processor.brokersAnswered() }
            }
            let started = ContinuousClock.now
            do {
                try process(batch)
                if !batch.isEmpty { processor.metrics.record("upshift_batch_duration_seconds", [ContinuousClock.now - started]) }
                if ContinuousClock.now - lastExpiry >= configuration.expiryInterval { try expireIdleCustomers() }
            } catch let error as KafkaError where error.kind != .fatal {
                // The transaction cannot go on (librdkafka refuses records once it must abort):
                // abort, rewind, and read the rest of this batch again from the rewound position.
                try abort(because: error)
                return
            }
            // Under exactly-once a failed delivery fails the commit; at least once, the commit checks this count.
            undelivered += producer.deliveries().count { (try? $0.result.get()) == nil }
            if ContinuousClock.now - lastCommit >= configuration.commitInterval { try commit() }
        }

        /// What a batch did, counted locally and handed to the statistics and metrics once per
        /// batch rather than once per record.
        struct BatchTally {
            var recordsIn = 0
            var processed = 0
            var deadLettered = 0
            var consumed: [String: [Event.Kind: Int]] = [:]
            var delays: [Duration] = []
        }

        func process(_ batch: [ConsumerRecord]) throws {
            var tally = BatchTally()
            tally.delays.reserveCapacity(batch.count)
            defer { record(tally) }
            let now = Timestamp.now
            // A poll hands over each partition's records together: each such run is one group.
            var start = batch.startIndex
            while start < batch.endIndex {
                let partition = batch[start].partition
                let end = batch[start...].firstIndex { $0.partition != partition } ?? batch.endIndex
                let group = batch[start..<end]
                start = end
                guard tasks[partition] != nil else {
                    // Every assigned partition has a task once restored; a record without one must
                    // not be dropped quietly, so the run stops (its offset is not committed).
                    throw KafkaError(
                        code: .state, message: "no task for \(group.first!.topicPartition): its restore did not complete",
                        operation: "process record at offset \(group.first!.offset)")
                }
                try begin()
                var readAgain = 0
                for (record, outcome) in zip(group, tasks[partition]!.process(group, decoder: decoder)) {
                    switch outcome {
                    case .processed(let outputs, let kind, let time):
                        tally.recordsIn += 1
                        tally.processed += 1
                        tally.consumed[record.topic, default: [:]][kind, default: 0] += 1
                        tally.delays.append(.milliseconds((now - time).milliseconds))
                        notice(outputs)
                        try send(outputs)
                    case .deadLetter(let rejection, let outputs):
                        tally.recordsIn += 1
                        tally.deadLettered += 1
                        processor.metrics.deadLettered(rejection)
                        notice(outputs)
                        try emit(records.deadLetter(record, rejection))
                        try send(outputs)
                    case .alreadyRead:
                        readAgain += 1
                    }
                }
                if readAgain > 0 { try skipAhead(partition, readAgain: readAgain) }
            }
            if configuration.clock == .wallClock {
                let now = Timestamp.now
                for partition in tasks.keys.sorted() {
                    let outputs = tasks[partition]!.advance(to: now)
                    if tasks[partition]!.hasUncommittedWork { try begin() }
                    notice(outputs)
                    try send(outputs)
                }
            }
        }

        /// The consumer read records of `partition` that its task had already applied (see
        /// ``PartitionTask/process(_:decoder:)``): it is moved on to where the task stands, so that
        /// it does not read the rest of them again too.
        func skipAhead(_ partition: Int32, readAgain: Int) throws {
            let positions = tasks[partition]!.offsets.map { TopicPartitionOffset($0.key, KafkaOffset($0.value)) }
                .sorted { $0.topicPartition < $1.topicPartition }
            logger.warning(
                "records read again",
                metadata: ["partition": "\(partition)", "records": "\(readAgain)", "seek": "\(positions.map(\.description).joined(separator: ","))"])
            processor.count { $0.readAgain += readAgain }
            processor.metrics.count("upshift_records_read_again_total", ["partition": "\(partition)"], by: readAgain)
            try consumer.seek(positions)
        }

        func record(_ tally: BatchTally) {
            guard tally.recordsIn > 0 else { return }
            processor.count {
                $0.recordsIn += tally.recordsIn
                $0.processed += tally.processed
                $0.deadLettered += tally.deadLettered
            }
            for (topic, kinds) in tally.consumed {
                for (kind, count) in kinds { processor.metrics.consumed(topic: topic, type: kind.rawValue, count: count) }
            }
            processor.metrics.record("upshift_event_delay_seconds", tally.delays)
        }

        // MARK: Pauses

        /// A pause a task decided holds for every task of this instance at once, and, through the
        /// control topic it is written to with the transaction, for every other instance.
        func notice(_ outputs: [Output]) {
            for output in outputs where output.kind == .pause {
                if let pause = output.json.object.flatMap(Pause.init) { applyEverywhere(pause, decidedHere: true) }
            }
        }

        /// Reads the control topic to its end before any input: a pause decided before this run
        /// holds from its first record.
        func loadPauses() throws {
            try control.readToEnd(TopicPartition(configuration.topics.control, 0), maxRecords: 1_000) { apply($0) }
        }

        /// Applies the pauses other instances (or earlier runs) wrote to the control topic.
        func readControl() {
            do {
                apply(try control.poll(maxRecords: 1_000, timeout: .zero))
            } catch {
                if lastConsumerError != error.description {
                    lastConsumerError = error.description
                    logger.warning("control topic error", metadata: ["error": "\(error)"])
                }
            }
        }

        func apply(_ records: [ConsumerRecord]) {
            for record in records {
                guard let value = record.value, let pause = OutputRecords.pause(from: value) else {
                    logger.warning(
                        "control record is not a pause, ignored",
                        metadata: ["topic": "\(record.topic)", "offset": "\(record.offset)"])
                    continue
                }
                applyEverywhere(pause, decidedHere: false)
            }
        }

        func applyEverywhere(_ pause: Pause, decidedHere: Bool) {
            guard pauses[pause.key] == nil, pause.holds(in: processor.program) else { return }
            pauses[pause.key] = pause
            for partition in tasks.keys { tasks[partition]!.engine.apply(pause) }
            logger.warning(
                "variant paused",
                metadata: ["workflow": "\(pause.key.workflow)", "version": "\(pause.key.version)", "arm": "\(pause.key.arm)",
                           "guardrail": "\(pause.guardrail)", "decided": "\(decidedHere ? "here" : "elsewhere")"])
            processor.metrics.set("upshift_paused_arms", ["workflow": pause.key.workflow, "arm": pause.key.arm], to: 1)
        }

        /// Forgets the customers idle for the program's idle TTL, by each partition's clock; their
        /// deletions reach the changelog with the next commit.
        func expireIdleCustomers() throws {
            lastExpiry = ContinuousClock.now
            for partition in tasks.keys.sorted() {
                guard let now = configuration.clock == .wallClock ? Timestamp.now : tasks[partition]!.streamTime else { continue }
                let expired = tasks[partition]!.expireIdle(at: now)
                guard expired > 0 else { continue }
                try begin()
                processor.count { $0.expiredCustomers += expired }
            }
        }

        /// Opens a transaction for work about to be done, or, while a commit is in flight (its
        /// transaction still open), notes that the work needs the next one. The in-flight check
        /// comes first: work with no output to hold would otherwise be read, never committed.
        func begin() throws {
            guard inFlight == nil else {
                pendingWork = true
                return
            }
            guard !inTransaction else { return }
            transaction += 1
            if configuration.guarantee == .exactlyOnce { try producer.beginTransaction() }
            inTransaction = true
        }

        func send(_ outputs: [Output]) throws {
            guard !outputs.isEmpty else { return }
            for output in outputs { try emit(records.record(for: output)) }
            processor.count { $0.outputs += outputs.count }
            processor.metrics.decided(outputs)
        }

        /// Produces a record in the open transaction, or holds it while a commit is in flight.
        func emit(_ record: ProducerRecord) throws {
            guard inFlight == nil else {
                held.append(record)
                pendingWork = true
                return
            }
            try begin()
            try producer.send(record)
        }

        /// Commits the open transaction: on the commit thread (exactly-once, while running), or
        /// here and now (at least once, on a revocation or a stop). An abortable failure aborts
        /// and rewinds; a fatal one is thrown, and so is a retriable one that outlasts a shutdown.
        func commit(synchronously: Bool = false) throws {
            try land(waiting: synchronously)
            // A commit still in flight: the interval stays due, so that the next step commits this
            // interval's work as soon as that one lands, not a whole interval later.
            guard inFlight == nil else { return }
            lastCommit = ContinuousClock.now
            guard inTransaction else { return }
            do {
                let job = try prepareCommit()
                if configuration.guarantee == .exactlyOnce, !synchronously {
                    dispatch(job)
                } else {
                    try finishCommit(job)
                }
            } catch where error.kind == .fatal {
                logger.critical("stopping: fenced or failed", metadata: ["error": "\(error)"])
                throw error
            } catch where error.kind == .retriable && shutdownDeadline != nil {
                throw error
            } catch {
                try abort(because: error)
            }
        }

        /// Takes what the transaction must still carry from the tasks: their input offsets and
        /// their changes since the last commit, not yet encoded.
        private func prepareCommit() throws(KafkaError) -> CommitJob {
            let partitions = tasks.keys.sorted()
            let offsets = partitions.flatMap { partition in
                tasks[partition]!.offsets.map { TopicPartitionOffset($0.key, KafkaOffset($0.value)) }
            }
            let changelog = partitions.compactMap { tasks[$0]!.takeChanges(transaction: transaction, aborted: aborted) }
            let group = configuration.guarantee == .exactlyOnce && !offsets.isEmpty ? try consumer.groupMetadata() : nil
            return CommitJob(offsets: offsets, group: group, changelog: changelog, session: session)
        }

        /// The commit, here and now, and what follows a landed commit. At least once, every
        /// record is delivered before the input offsets are committed.
        private func finishCommit(_ job: CommitJob) throws(KafkaError) {
            if let group = job.group {
                try retrying("send offsets") { () throws(KafkaError) in try producer.sendOffsets(job.offsets, group: group, timeout: callTimeout) }
            }
            try job.sendChangelog(through: producer)
            if configuration.guarantee == .exactlyOnce {
                try retrying("commit transaction") { () throws(KafkaError) in try producer.commitTransaction(timeout: callTimeout) }
            } else {
                try flushForCommit()
                if !job.offsets.isEmpty { try retrying("commit offsets") { () throws(KafkaError) in try consumer.commit(job.offsets) } }
            }
            inTransaction = false
            landed(job.committedOffsets)
        }

        /// Hands the rest of the commit to the commit thread: the offsets, the changelog (encoded
        /// there) and the commit call. The transaction stays ours until it lands. The commit
        /// thread calls again, with backoff, while a call fails retriably (librdkafka allows it)
        /// and no stop is asked for.
        private func dispatch(_ job: CommitJob) {
            let commit = InFlightCommit(transaction: transaction, committedOffsets: job.committedOffsets)
            inFlight = commit
            let (producer, processor, timeout) = (self.producer, self.processor, callTimeout)
            committer.async {
                func retrying(_ call: () throws(KafkaError) -> Void) throws(KafkaError) {
                    var delay = Duration.milliseconds(100)
                    while true {
                        do {
                            return try call()
                        } catch where error.kind == .retriable && !processor.isStopping {
                            Thread.sleep(forTimeInterval: Double(delay / .milliseconds(1)) / 1000)
                            delay = min(delay * 2, .seconds(5))
                        }
                    }
                }
                commit.finish(Result { () throws(KafkaError) in
                    if let group = job.group {
                        try retrying { () throws(KafkaError) in try producer.sendOffsets(job.offsets, group: group, timeout: timeout) }
                    }
                    try job.sendChangelog(through: producer)
                    try retrying { () throws(KafkaError) in try producer.commitTransaction(timeout: timeout) }
                })
            }
        }

        /// Takes the result of the commit in flight once it has landed (waiting for it if asked),
        /// then opens the next transaction for the records held meanwhile.
        func land(waiting: Bool) throws {
            guard let commit = inFlight, let outcome = waiting ? commit.wait() : commit.result else { return }
            inFlight = nil
            switch outcome {
            case .success:
                inTransaction = false
                landed(commit.committedOffsets)
            case .failure(let error) where error.kind == .fatal:
                logger.critical("stopping: fenced or failed", metadata: ["error": "\(error)"])
                throw error
            case .failure(let error):
                held = []
                pendingWork = false
                try abort(because: error)
                return
            }
            guard pendingWork else { return }
            pendingWork = false
            try begin()
            let records = held
            held = []
            for record in records { try producer.send(record) }
        }

        /// Waits for the commit in flight, if any: before a revocation, a stop or an abort.
        func settle() throws {
            try land(waiting: true)
        }

        private func landed(_ committed: Int64) {
            undelivered = 0
            processor.brokersAnswered()
            processor.count {
                $0.transactionsCommitted += 1
                $0.committedOffsets = committed
            }
            processor.metrics.transaction(committed: true)
            for (partition, task) in tasks {
                processor.metrics.partition(partition, customers: task.engine.customerCount, stateBytes: task.changelog.stateBytes)
            }
        }

        /// At least once: every record of the batch is delivered before its input offsets are committed.
        func flushForCommit() throws(KafkaError) {
            let reports = try retrying("deliver records") { () throws(KafkaError) in try producer.flush(timeout: callTimeout) }
            undelivered += reports.count { (try? $0.result.get()) == nil }
            guard undelivered == 0 else {
                defer { undelivered = 0 }
                throw KafkaError(code: .failed, message: "\(undelivered) records were not delivered", operation: "flush", kind: .abortable)
            }
        }

        /// Drops the open transaction, if any, and rebuilds every task from the changelog, which
        /// rewinds the input to the last committed offsets.
        func abort(because error: KafkaError) throws {
            // A commit in flight is the transaction to abort if it failed; if it landed, only
            // the work since then is dropped.
            if let commit = inFlight {
                inFlight = nil
                if case .success = commit.wait() {
                    inTransaction = false
                    landed(commit.committedOffsets)
                }
            }
            held = []
            pendingWork = false
            // Only an open transaction is aborted: the number of one that landed stays committed.
            if inTransaction {
                logger.warning("aborting transaction", metadata: ["transaction": "\(transaction)", "error": "\(error)"])
                if configuration.guarantee == .exactlyOnce {
                    try retrying("abort transaction") { () throws(KafkaError) in try producer.abortTransaction(timeout: callTimeout) }
                }
                aborted.append(transaction)
                processor.count { $0.transactionsAborted += 1 }
                processor.metrics.transaction(committed: false)
            } else {
                logger.warning("rewinding", metadata: ["error": "\(error)"])
            }
            inTransaction = false
            undelivered = 0
            if shutdownDeadline == nil { restore(tasks.keys.sorted()) }
        }

        /// Calls `body` again while it fails with a retriable error (a broker down, a call timed
        /// out), backing off from 100 ms to 5 s, until it succeeds, fails otherwise, or a stop
        /// runs out of time (its clock starts when the stop is seen, here or in the loop).
        /// librdkafka allows the transactional calls to be repeated this way.
        func retrying<T>(_ operation: String, _ body: () throws(KafkaError) -> T) throws(KafkaError) -> T {
            var delay = Duration.milliseconds(100)
            var attempts = 0
            while true {
                do {
                    return try body()
                } catch where error.kind == .retriable {
                    attempts += 1
                    if shutdownDeadline == nil, processor.isStopping {
                        shutdownDeadline = ContinuousClock.now + configuration.shutdownTimeout
                    }
                    if let shutdownDeadline, ContinuousClock.now + delay >= shutdownDeadline { throw error }
                    if attempts == 10 { logger.warning("still retrying", metadata: ["operation": "\(operation)", "error": "\(error)"]) }
                    Thread.sleep(forTimeInterval: Double(delay / .milliseconds(1)) / 1000)
                    delay = min(delay * 2, .seconds(5))
                }
            }
        }

        // MARK: Rebalancing

        /// Throws unless `topics` (names or patterns) are co-partitioned and the changelog can hold their state.
        func verifyLayout(of topics: [String]) throws {
            let described = try retrying("read topic metadata") { () throws(KafkaError) in
                try admin.describeTopics(try admin.listTopics(timeout: callTimeout), timeout: callTimeout)
            }
            try TopicLayout(partitions: Dictionary(uniqueKeysWithValues: described.map { ($0.name, $0.partitions.count) }))
                .verify(inputs: topics, changelog: configuration.topics.changelog, control: configuration.topics.control)
        }

        /// Runs inside `poll`: a revocation commits first, while the partitions are still ours;
        /// an assignment checks the layout, then restores the new partitions before any of their
        /// records is read.
        func rebalanced(_ event: RebalanceEvent) {
            do {
                switch event {
                case .assigned(let partitions):
                    logger.info("assigned", metadata: ["partitions": "\(partitions.map(\.description).joined(separator: ","))"])
                    processor.count { $0.isReady = false }
                    try verifyLayout(of: Array(Set(partitions.map(\.topic))).sorted())
                    restore(Array(Set(partitions.map(\.partition))).sorted())
                    processor.count { [ready = callbackError == nil] in $0.isReady = ready }
                case .revoked(let partitions, let lost):
                    logger.info("revoked", metadata: ["partitions": "\(partitions.map(\.description).joined(separator: ","))", "lost": "\(lost)"])
                    if lost {
                        try settle()
                        held = []
                        pendingWork = false
                        if inTransaction, configuration.guarantee == .exactlyOnce {
                            try retrying("abort transaction") { () throws(KafkaError) in try producer.abortTransaction(timeout: callTimeout) }
                        }
                        inTransaction = false
                    } else {
                        try commit(synchronously: true)
                    }
                    for partition in Set(partitions.map(\.partition)) { tasks[partition] = nil }
                    processor.count { [tasks] in
                        $0.assignedPartitions = tasks.count
                        $0.isReady = !tasks.isEmpty
                    }
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
                    var task = PartitionTask(partition: partition, program: processor.program, restored: restorer, changelogTopic: configuration.topics.changelog)
                    for pause in pauses.values { task.engine.apply(pause) }
                    tasks[partition] = task
                    processor.count { [tasks] in
                        $0.restoredCustomers += task.engine.customerCount
                        $0.assignedPartitions = tasks.count
                    }
                    positions += try startingPositions(partition, restored: task.offsets)
                    var metadata: Logger.Metadata = [
                        "partition": "\(partition)", "customers": "\(task.engine.customerCount)",
                        "records": "\(restorer.recordsRead)", "duration": "\(ContinuousClock.now - started)",
                    ]
                    if restorer.unusable > 0 { metadata["unusable"] = "\(restorer.unusable)" }
                    logger.info("restored", metadata: metadata)
                    processor.metrics.record("upshift_restore_duration_seconds", [ContinuousClock.now - started])
                    processor.metrics.partition(partition, customers: task.engine.customerCount, stateBytes: task.changelog.stateBytes)
                } catch {
                    callbackError = error
                    logger.error("restore failed", metadata: ["partition": "\(partition)", "error": "\(error)"])
                }
            }
            guard !positions.isEmpty else { return }
            do {
                try consumer.seek(positions)
            } catch {
                callbackError = error
                logger.error("seek to the restored offsets failed", metadata: ["error": "\(error)"])
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
            try reader.readToEnd(changelog) { records in
                for record in records { restorer.read(record) }
            }
            restorer.finish()
            return restorer
        }
    }
}

/// What a commit sends once the processing thread has taken it from the tasks: the input offsets
/// (with the group metadata, under exactly-once), then each partition's changelog records.
/// Offsets go first, so that a refusal aborts before any commit marker is on its way.
private struct CommitJob: Sendable {
    let offsets: [TopicPartitionOffset]
    let group: ConsumerGroupMetadata?
    let changelog: [ChangelogBatch]
    let session: String

    /// The sum of the input offsets: how far the input is done once this commit lands.
    var committedOffsets: Int64 { offsets.reduce(0) { $0 + $1.offset.rawValue } }

    func sendChangelog(through producer: KafkaProducer) throws(KafkaError) {
        for batch in changelog {
            for record in batch.records(session: session) { try producer.send(record) }
        }
    }
}

/// A commit running on the commit thread (its ``CommitJob`` and the commit call): the transaction
/// it ends, the input offsets it records, and, once it is done, its result. Written once by the commit thread, read by the
/// processing thread after the semaphore says it is there.
private final class InFlightCommit: @unchecked Sendable {
    let transaction: Int
    let committedOffsets: Int64
    private let done = DispatchSemaphore(value: 0)
    private let outcome = Mutex<Result<Void, KafkaError>?>(nil)

    init(transaction: Int, committedOffsets: Int64) {
        self.transaction = transaction
        self.committedOffsets = committedOffsets
    }

    func finish(_ result: Result<Void, KafkaError>) {
        outcome.withLock { $0 = result }
        done.signal()
    }

    /// The result if the call has returned, without waiting.
    var result: Result<Void, KafkaError>? { outcome.withLock { $0 } }

    func wait() -> Result<Void, KafkaError> {
        if let result { return result }
        done.wait()
        return result!
    }
}
