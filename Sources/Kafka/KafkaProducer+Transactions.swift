import CRdKafka

/// Kafka transactions: records produced and consumer offsets sent between ``beginTransaction()``
/// and ``commitTransaction(timeout:)`` become visible to `read_committed` readers all at once, or
/// not at all. Each call throws a ``KafkaError`` whose ``KafkaError/kind`` says what to do:
/// `.retriable` (call again), `.abortable` (call ``abortTransaction(timeout:)`` and rewind the
/// consumer to its committed offsets) or `.fatal` (the producer was fenced: close it).
extension KafkaProducer {
    /// Registers ``KafkaConfiguration/transactionalID`` with the coordinator, fencing any older
    /// producer with the same id and completing or aborting its open transaction. Call once.
    public func initTransactions(timeout: Duration = .seconds(30)) throws(KafkaError) {
        try KafkaError.check(
            rd_kafka_init_transactions(client.handle, timeout.timeoutMilliseconds), "initialize transactions")
    }

    public func beginTransaction() throws(KafkaError) {
        try KafkaError.check(rd_kafka_begin_transaction(client.handle), "begin transaction")
    }

    /// Adds consumed offsets to the transaction; they count as committed for the group only if
    /// the transaction commits. `group` comes from ``KafkaConsumer/groupMetadata()``.
    public func sendOffsets(
        _ offsets: [TopicPartitionOffset],
        group: ConsumerGroupMetadata,
        timeout: Duration = .seconds(30)
    ) throws(KafkaError) {
        let list = NativePartitionList(offsets)
        try KafkaError.check(
            list.withPointer {
                rd_kafka_send_offsets_to_transaction(client.handle, $0, group.pointer, timeout.timeoutMilliseconds)
            },
            "send offsets to transaction")
    }

    /// Flushes the transaction's records and commits it. A record that failed delivery makes
    /// this throw an abortable error.
    public func commitTransaction(timeout: Duration = .seconds(30)) throws(KafkaError) {
        try KafkaError.check(
            rd_kafka_commit_transaction(client.handle, timeout.timeoutMilliseconds), "commit transaction")
    }

    /// Drops the transaction's records and offsets; records still in flight are purged.
    public func abortTransaction(timeout: Duration = .seconds(30)) throws(KafkaError) {
        try KafkaError.check(
            rd_kafka_abort_transaction(client.handle, timeout.timeoutMilliseconds), "abort transaction")
    }
}
