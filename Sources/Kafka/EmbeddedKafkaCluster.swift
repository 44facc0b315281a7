import CRdKafka
import Synchronization

/// A Kafka cluster inside this process: librdkafka's mock cluster, a real Kafka-protocol broker
/// listening on loopback, for tests and demos. Any Kafka client (kcat included) can connect to
/// ``bootstrapServers``.
///
/// Known limits of librdkafka 2.0.2's mock, which tests must work around:
/// - it does not answer Admin CreateTopics: use ``createTopic(_:partitions:)``;
/// - `read_committed` readers still see the records of aborted transactions;
/// - each partition keeps only about its newest 5 MB, dropping older records silently;
/// - a consumer group join takes about 3 seconds.
///
/// The brokers run on librdkafka's own thread until ``stop()`` or deinit.
public final class EmbeddedKafkaCluster: Sendable {
    /// librdkafka handles are thread-safe; the lock only guards against use after ``stop()``.
    private struct Running: @unchecked Sendable {
        let handle: OpaquePointer
        let cluster: OpaquePointer
    }

    private let running: Mutex<Running?>
    /// `host:port,...` of the brokers on loopback.
    public let bootstrapServers: String
    public let brokerCount: Int

    /// Starts `brokers` brokers.
    ///
    /// - Throws: ``KafkaError`` when librdkafka cannot create the cluster (for example no free port).
    public init(brokers: Int = 1) throws(KafkaError) {
        precondition(brokers > 0, "a cluster needs at least one broker")
        let conf = rd_kafka_conf_new()
        var message = ErrorText()
        _ = message.fill { rd_kafka_conf_set(conf, "log_level", "3", $0, $1) }
        // The brokers' sockets take this from the handle that owns them. Without it, Nagle's
        // algorithm against delayed ACKs on loopback holds each transactional call about 43 ms.
        _ = message.fill { rd_kafka_conf_set(conf, "socket.nagle.disable", "true", $0, $1) }
        guard let handle = message.fill({ rd_kafka_new(RD_KAFKA_PRODUCER, conf, $0, $1) }) else {
            rd_kafka_conf_destroy(conf)
            throw KafkaError(code: .invalidArgument, message: message.text, operation: "start embedded cluster")
        }
        guard let cluster = rd_kafka_mock_cluster_new(handle, Int32(brokers)) else {
            rd_kafka_destroy(handle)
            throw KafkaError(
                code: .failed, message: "librdkafka could not create the mock cluster",
                operation: "start embedded cluster", kind: .permanent)
        }
        self.running = Mutex(Running(handle: handle, cluster: cluster))
        self.brokerCount = brokers
        self.bootstrapServers = String(cString: rd_kafka_mock_cluster_bootstraps(cluster))
    }

    deinit { stop() }

    /// Closes the brokers and their connections. Later calls on this cluster throw `_STATE`.
    public func stop() {
        running.withLock { running in
            guard let stopping = running else { return }
            rd_kafka_mock_cluster_destroy(stopping.cluster)
            rd_kafka_destroy(stopping.handle)
            running = nil
        }
    }

    private func withCluster<Result: Sendable>(
        _ operation: String, _ body: (OpaquePointer) -> Result
    ) throws(KafkaError) -> Result {
        let result = running.withLock { running in running.map { body($0.cluster) } }
        guard let result else {
            throw KafkaError(code: .state, message: "the embedded cluster is stopped", operation: operation)
        }
        return result
    }

    /// Creates a topic with this many partitions, replicated on every broker (up to 3).
    public func createTopic(_ name: String, partitions: Int) throws(KafkaError) {
        let operation = "create topic \(name) on the embedded cluster"
        let replicas = Int32(min(brokerCount, 3))
        try KafkaError.check(
            withCluster(operation) { rd_kafka_mock_topic_create($0, name, Int32(partitions), replicas) }, operation)
    }

    /// Makes the next `errors.count` requests of this kind fail, in order, with these codes.
    public func failNextRequests(_ request: KafkaRequest, with errors: [KafkaError.Code]) throws(KafkaError) {
        var codes = errors.map(\.native)
        try withCluster("inject \(request) errors") { cluster in
            codes.withUnsafeMutableBufferPointer { buffer in
                rd_kafka_mock_push_request_errors_array(cluster, request.rawValue, buffer.count, buffer.baseAddress)
            }
        }
    }

    /// Forgets errors queued by ``failNextRequests(_:with:)`` that have not fired yet.
    public func clearRequestErrors(_ request: KafkaRequest) throws(KafkaError) {
        try withCluster("clear \(request) errors") { rd_kafka_mock_clear_request_errors($0, request.rawValue) }
    }

    /// Takes a broker off the network (its connections close and new ones are refused), or back on.
    public func setBroker(_ id: Int32, up: Bool) throws(KafkaError) {
        let operation = "set broker \(id) \(up ? "up" : "down")"
        let err = try withCluster(operation) { cluster in
            up ? rd_kafka_mock_broker_set_up(cluster, id) : rd_kafka_mock_broker_set_down(cluster, id)
        }
        try KafkaError.check(err, operation)
    }

    /// Holds every response of a broker for `delay`, as a distant or loaded broker would: each
    /// call that waits for that broker (a commit, a fetch) takes that much longer.
    public func setResponseDelay(_ delay: Duration, broker id: Int32) throws(KafkaError) {
        let operation = "set broker \(id) response delay to \(delay)"
        let err = try withCluster(operation) { rd_kafka_mock_broker_set_rtt($0, id, Int32(clamping: delay.milliseconds)) }
        try KafkaError.check(err, operation)
    }
}

/// Kafka protocol requests, by API key, for error injection.
public enum KafkaRequest: Int16, Sendable, CaseIterable {
    case produce = 0
    case fetch = 1
    case listOffsets = 2
    case metadata = 3
    case offsetCommit = 8
    case offsetFetch = 9
    case findCoordinator = 10
    case joinGroup = 11
    case heartbeat = 12
    case leaveGroup = 13
    case syncGroup = 14
    case initProducerID = 22
    case addPartitionsToTransaction = 24
    case addOffsetsToTransaction = 25
    case endTransaction = 26
    case transactionOffsetCommit = 28
}
