import CRdKafka
import Synchronization

/// A change of a group member's partitions, reported while the change is under way.
public enum RebalanceEvent: Sendable, Hashable {
    /// These partitions are now assigned; records from them follow in later polls.
    /// Under cooperative assignment these are only the partitions added. A rebalance that
    /// changes nothing for this member is not reported.
    case assigned([TopicPartition])
    /// These partitions are about to go. The handler runs before they are unassigned, so it can
    /// commit their offsets (or end a transaction) while it still owns them. `lost` is true when
    /// the group already gave them to another member (a missed session), so committing will fail.
    case revoked([TopicPartition], lost: Bool)
}

/// A Kafka consumer: a group member that subscribes to topics, or a reader of assigned partitions.
///
/// Threading: every method is safe to call from any thread, but ``poll(maxRecords:timeout:)``,
/// the synchronous ``commit(_:)``, ``committed(_:timeout:)`` and ``close()`` block the calling
/// thread, up to their timeout. Call them from a ``KafkaThread`` (or another thread of your own),
/// never from Swift concurrency's cooperative pool. The rebalance handler runs synchronously inside
/// `poll` and `close`, on the thread that called them.
public final class KafkaConsumer: Sendable {
    private let client: NativeClient
    private let queue: NativeQueue
    private let closed = Mutex(false)

    /// Creates a consumer; it connects lazily, on the first subscribe or assign.
    ///
    /// - Throws: ``KafkaError`` with librdkafka's message when a property is unknown or invalid,
    ///   and `invalidArgument` without a group id (``KafkaConfiguration/groupID`` or `group.id`).
    public init(configuration: KafkaConfiguration, events: ClientEvents = ClientEvents()) throws(KafkaError) {
        let context = ClientContext(events: events)
        client = try NativeClient(configuration, role: .consumer, context: context) { conf in
            rd_kafka_conf_set_rebalance_cb(conf) { handle, err, partitions, opaque in
                KafkaConsumer.rebalance(handle!, err, partitions!, ClientContext.from(opaque))
            }
        }
        guard let queue = NativeQueue(consumerOf: client) else {
            throw KafkaError(
                code: .invalidArgument, message: "no group.id: librdkafka's consumer needs one, even to read assigned partitions only",
                operation: "create consumer client")
        }
        rd_kafka_poll_set_consumer(client.handle)
        self.queue = queue
    }

    deinit {
        // Destroying the handle closes the consumer and revokes its partitions; the handler
        // may refer to objects already gone by then, so it is not called from here.
        client.context.rebalanceHandler.withLock { $0 = nil }
    }

    // MARK: Subscription and assignment

    /// Joins the group (``KafkaConfiguration/groupID``) and subscribes to topics; a name starting
    /// with `^` is a regular expression. The handler is called for every assignment and revocation.
    public func subscribe(
        to topics: [String],
        onRebalance handler: (@Sendable (RebalanceEvent) -> Void)? = nil
    ) throws(KafkaError) {
        client.context.rebalanceHandler.withLock { $0 = handler }
        let list = NativePartitionList(topics.map { TopicPartition($0, RD_KAFKA_PARTITION_UA) })
        try KafkaError.check(list.withPointer { rd_kafka_subscribe(client.handle, $0) }, "subscribe to \(topics)")
    }

    /// Leaves the subscription; the current assignment is revoked through the rebalance handler.
    public func unsubscribe() throws(KafkaError) {
        try KafkaError.check(rd_kafka_unsubscribe(client.handle), "unsubscribe")
    }

    /// Reads exactly these partitions, without group management, from the given offsets
    /// (``KafkaOffset/beginning``, ``KafkaOffset/end``, ``KafkaOffset/stored`` or absolute).
    ///
    /// librdkafka still needs a ``KafkaConfiguration/groupID`` (it fails with `_UNKNOWN_GROUP`
    /// otherwise), but no group is joined: it is used only for commits.
    public func assign(_ offsets: [TopicPartitionOffset]) throws(KafkaError) {
        let list = NativePartitionList(offsets)
        try KafkaError.check(list.withPointer { rd_kafka_assign(client.handle, $0) }, "assign \(offsets)")
    }

    /// The partitions currently assigned, sorted.
    public func assignment() throws(KafkaError) -> [TopicPartition] {
        var list: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>?
        try KafkaError.check(rd_kafka_assignment(client.handle, &list), "read assignment")
        return NativePartitionList(owning: list!).offsets.map(\.topicPartition).sorted()
    }

    /// `EAGER` or `COOPERATIVE`, from the group's assignment strategy; `NONE` before joining.
    public var rebalanceProtocol: String {
        rd_kafka_rebalance_protocol(client.handle).map { String(cString: $0) } ?? "NONE"
    }

    /// This member's id in the group, once joined.
    public var memberID: String? {
        guard let id = rd_kafka_memberid(client.handle) else { return nil }
        defer { rd_kafka_mem_free(client.handle, id) }
        let text = String(cString: id)
        return text.isEmpty ? nil : text
    }

    // MARK: Reading

    /// Waits up to `timeout` for the first record, then takes whatever else is ready, up to
    /// `maxRecords`. Serves rebalances, commit completions and client events on this thread.
    ///
    /// - Throws: ``KafkaError`` for a consumer error (an unknown topic, a failed assignment,
    ///   a fatal error). Records read before the error are returned first and the error is
    ///   thrown by the next poll.
    public func poll(maxRecords: Int = 1000, timeout: Duration) throws(KafkaError) -> [ConsumerRecord] {
        if let error = client.context.pendingError.withLock({ error in defer { error = nil }; return error }) {
            throw error
        }
        guard maxRecords > 0, let first = rd_kafka_consumer_poll(client.handle, timeout.timeoutMilliseconds) else {
            return []
        }
        var batch = MessageBatch(self)
        batch.take(first)
        // The rest of the batch: only what is already fetched, without waiting.
        let chunk = min(maxRecords - 1, 1024)
        withUnsafeTemporaryAllocation(of: UnsafeMutablePointer<rd_kafka_message_t>?.self, capacity: max(chunk, 1)) {
            messages in
            var taken = 1
            while taken < maxRecords {
                let wanted = min(chunk, maxRecords - taken)
                let count = queue.withPointer { rd_kafka_consume_batch_queue($0, 0, messages.baseAddress, wanted) }
                guard count > 0 else { break }
                for index in 0..<count { batch.take(messages[index]!) }
                taken += count
                if count < wanted { break }
            }
        }
        return try batch.finish()
    }

    /// Records decoded from librdkafka's messages. No record is dropped for an error beside it:
    /// the first error is thrown at once when the batch holds no record, and otherwise kept for
    /// the next poll; any further one goes to the error handler.
    private struct MessageBatch: ~Copyable {
        let consumer: KafkaConsumer
        var decoder = RecordDecoder()
        var records: [ConsumerRecord] = []
        var firstError: KafkaError?

        init(_ consumer: KafkaConsumer) { self.consumer = consumer }

        mutating func take(_ message: UnsafeMutablePointer<rd_kafka_message_t>) {
            defer { rd_kafka_message_destroy(message) }
            switch message.pointee.err {
            case RD_KAFKA_RESP_ERR_NO_ERROR:
                records.append(decoder.record(from: message))
            case RD_KAFKA_RESP_ERR__PARTITION_EOF:
                break
            default:
                let error = consumer.consumerError(message)
                if firstError == nil { firstError = error } else { consumer.client.context.report(error) }
            }
        }

        consuming func finish() throws(KafkaError) -> [ConsumerRecord] {
            if let firstError {
                if records.isEmpty { throw firstError }
                consumer.client.context.pendingError.withLock { $0 = firstError }
            }
            return records
        }
    }

    private func consumerError(_ message: UnsafeMutablePointer<rd_kafka_message_t>) -> KafkaError {
        let m = message.pointee
        let text = rd_kafka_message_errstr(message).map { String(cString: $0) }
        if m.err == RD_KAFKA_RESP_ERR__FATAL, let fatal = client.fatalError {
            return fatal
        }
        let place = m.rkt.map { " from \(String(cString: rd_kafka_topic_name($0)))[\(m.partition)]" } ?? ""
        return KafkaError(m.err, operation: "consume\(place)", message: text)
    }

    /// Moves the read position of assigned partitions.
    public func seek(_ offsets: [TopicPartitionOffset], timeout: Duration = .seconds(10)) throws(KafkaError) {
        let list = NativePartitionList(offsets)
        try KafkaError.check(
            list.withPointer { rd_kafka_seek_partitions(client.handle, $0, timeout.timeoutMilliseconds) }, "seek \(offsets)")
        if let error = list.firstError(operation: "seek") { throw error }
    }

    /// Stops fetching from these partitions until ``resume(_:)``; the assignment is kept.
    public func pause(_ partitions: [TopicPartition]) throws(KafkaError) {
        let list = NativePartitionList(partitions)
        try KafkaError.check(list.withPointer { rd_kafka_pause_partitions(client.handle, $0) }, "pause \(partitions)")
        if let error = list.firstError(operation: "pause") { throw error }
    }

    public func resume(_ partitions: [TopicPartition]) throws(KafkaError) {
        let list = NativePartitionList(partitions)
        try KafkaError.check(list.withPointer { rd_kafka_resume_partitions(client.handle, $0) }, "resume \(partitions)")
        if let error = list.firstError(operation: "resume") { throw error }
    }

    /// The offset of the next record each partition will return (``KafkaOffset/invalid`` before the first).
    public func position(_ partitions: [TopicPartition]) throws(KafkaError) -> [TopicPartitionOffset] {
        let list = NativePartitionList(partitions)
        try KafkaError.check(list.withPointer { rd_kafka_position(client.handle, $0) }, "read position")
        return list.offsets
    }

    /// The oldest and next offsets a partition holds, asked of its leader.
    public func watermarks(of partition: TopicPartition, timeout: Duration = .seconds(10)) throws(KafkaError) -> (
        low: Int64, high: Int64
    ) {
        var low: Int64 = 0
        var high: Int64 = 0
        try KafkaError.check(
            rd_kafka_query_watermark_offsets(
                client.handle, partition.topic, partition.partition, &low, &high, timeout.timeoutMilliseconds),
            "query watermarks of \(partition)")
        return (low, high)
    }

    /// Assigns this consumer to `partition` alone, from its beginning, and reads it up to its end
    /// as it is when the call starts, handing each batch to `body`; the assignment stays. The
    /// position, not the last record's offset, says how far: transaction markers take offsets and
    /// are never returned.
    ///
    /// - Throws: ``KafkaError`` `timedOut` when no record arrives for `patience` short of the end,
    ///   and any error of the watermark query, the assignment or a poll.
    public func readToEnd(
        _ partition: TopicPartition, maxRecords: Int = 5_000, patience: Duration = .seconds(5),
        _ body: ([ConsumerRecord]) -> Void
    ) throws(KafkaError) {
        let (low, end) = try watermarks(of: partition)
        try assign([TopicPartitionOffset(partition, .beginning)])
        func position() throws(KafkaError) -> Int64 {
            let offset = try self.position([partition]).first?.offset ?? .invalid
            return offset.isAbsolute ? offset.rawValue : low
        }
        while try position() < end {
            let records = try poll(maxRecords: maxRecords, timeout: patience)
            if records.isEmpty, try position() < end {
                throw KafkaError(code: .timedOut, message: "\(partition) stopped at \(try position()) of \(end)", operation: "read to the end")
            }
            body(records)
        }
    }

    // MARK: Offsets

    /// Marks offsets to be committed by the next automatic or argument-less commit.
    public func store(_ offsets: [TopicPartitionOffset]) throws(KafkaError) {
        let list = NativePartitionList(offsets)
        try KafkaError.check(list.withPointer { rd_kafka_offsets_store(client.handle, $0) }, "store offsets \(offsets)")
        if let error = list.firstError(operation: "store offset") { throw error }
    }

    /// Commits offsets and waits for the coordinator's answer; nil commits the stored offsets.
    public func commit(_ offsets: [TopicPartitionOffset]? = nil) throws(KafkaError) {
        let list = offsets.map { NativePartitionList($0) }
        let err = list?.withPointer { rd_kafka_commit(client.handle, $0, 0) } ?? rd_kafka_commit(client.handle, nil, 0)
        try KafkaError.check(err, "commit offsets")
        if let error = list?.firstError(operation: "commit offset") { throw error }
    }

    /// Sends a commit without waiting. The completion runs inside a later ``poll(maxRecords:timeout:)``
    /// with the offsets committed, or the error.
    public func commit(
        _ offsets: [TopicPartitionOffset]?,
        completion: @escaping @Sendable (Result<[TopicPartitionOffset], KafkaError>) -> Void
    ) {
        let list = offsets.map { NativePartitionList($0) }
        let box = Unmanaged.passRetained(CommitCompletion(completion)).toOpaque()
        let callback: @convention(c) (
            OpaquePointer?, rd_kafka_resp_err_t, UnsafeMutablePointer<rd_kafka_topic_partition_list_t>?,
            UnsafeMutableRawPointer?
        ) -> Void = { _, err, offsets, opaque in
            let completion = Unmanaged<CommitCompletion>.fromOpaque(opaque!).takeRetainedValue()
            if err != RD_KAFKA_RESP_ERR_NO_ERROR {
                completion.body(.failure(KafkaError(err, operation: "commit offsets")))
            } else {
                completion.body(.success(offsets.map { NativePartitionList.offsets(in: $0) } ?? []))
            }
        }
        let err = queue.withPointer { queue in
            list?.withPointer { rd_kafka_commit_queue(client.handle, $0, queue, callback, box) }
                ?? rd_kafka_commit_queue(client.handle, nil, queue, callback, box)
        }
        if err != RD_KAFKA_RESP_ERR_NO_ERROR {
            Unmanaged<CommitCompletion>.fromOpaque(box).release()
            completion(.failure(KafkaError(err, operation: "commit offsets")))
        }
    }

    /// The group's committed offsets for these partitions (``KafkaOffset/invalid`` where none is).
    public func committed(_ partitions: [TopicPartition], timeout: Duration = .seconds(10)) throws(KafkaError)
        -> [TopicPartitionOffset]
    {
        let list = NativePartitionList(partitions)
        try KafkaError.check(
            list.withPointer { rd_kafka_committed(client.handle, $0, timeout.timeoutMilliseconds) }, "read committed offsets")
        if let error = list.firstError(operation: "read committed offset") { throw error }
        return list.offsets
    }

    /// The group's identity and generation, which a transactional producer sends with its offsets
    /// so that a fenced (zombie) member's commit is refused.
    public func groupMetadata() throws(KafkaError) -> ConsumerGroupMetadata {
        guard let metadata = rd_kafka_consumer_group_metadata(client.handle) else {
            throw KafkaError(code: .state, message: "consumer has no group.id", operation: "read group metadata")
        }
        return ConsumerGroupMetadata(owning: metadata)
    }

    // MARK: Closing

    /// Leaves the group: revokes the assignment through the rebalance handler, commits stored
    /// offsets if auto-commit is on, and sends LeaveGroup. Blocks until done. Calling it twice is harmless.
    public func close() throws(KafkaError) {
        let alreadyClosed = closed.withLock { closed in defer { closed = true }; return closed }
        guard !alreadyClosed else { return }
        try KafkaError.check(rd_kafka_consumer_close(client.handle), "close consumer")
    }

    // MARK: Rebalance callback

    private static func rebalance(
        _ handle: OpaquePointer,
        _ err: rd_kafka_resp_err_t,
        _ partitions: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>,
        _ context: ClientContext
    ) {
        let cooperative = String(cString: rd_kafka_rebalance_protocol(handle)) == "COOPERATIVE"
        let changed = NativePartitionList.offsets(in: partitions).map(\.topicPartition).sorted()
        let handler = context.rebalanceHandler.withLock { $0 }
        switch err {
        case RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS:
            if cooperative {
                reportAssignError(rd_kafka_incremental_assign(handle, partitions), context)
            } else {
                reportAssignError(rd_kafka_assign(handle, partitions), context)
            }
            if !changed.isEmpty { handler?(.assigned(changed)) }
        case RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS:
            if !changed.isEmpty { handler?(.revoked(changed, lost: rd_kafka_assignment_lost(handle) != 0)) }
            if cooperative {
                reportAssignError(rd_kafka_incremental_unassign(handle, partitions), context)
            } else {
                reportAssignError(rd_kafka_assign(handle, nil), context)
            }
        default:
            context.report(KafkaError(err, operation: "rebalance"))
            handler?(.revoked(changed, lost: true))
            reportAssignError(rd_kafka_assign(handle, nil), context)
        }
    }

    /// A failed assignment change is thrown by the next poll, and reported to the error handler.
    private static func reportAssignError(_ error: OpaquePointer?, _ context: ClientContext) {
        if let error { context.fail(KafkaError(consuming: error, operation: "apply rebalance assignment")) }
    }

    private static func reportAssignError(_ err: rd_kafka_resp_err_t, _ context: ClientContext) {
        if err != RD_KAFKA_RESP_ERR_NO_ERROR { context.fail(KafkaError(err, operation: "apply rebalance assignment")) }
    }
}

/// A retained completion handed to librdkafka as a commit's opaque pointer.
private final class CommitCompletion: Sendable {
    let body: @Sendable (Result<[TopicPartitionOffset], KafkaError>) -> Void
    init(_ body: @escaping @Sendable (Result<[TopicPartitionOffset], KafkaError>) -> Void) { self.body = body }
}

/// A consumer's group id, generation, member id and instance id, as a transactional producer
/// needs them (KIP-447). Immutable; obtained from ``KafkaConsumer/groupMetadata()``.
public final class ConsumerGroupMetadata: @unchecked Sendable {
    let pointer: OpaquePointer

    init(owning pointer: OpaquePointer) { self.pointer = pointer }

    deinit { rd_kafka_consumer_group_metadata_destroy(pointer) }
}
