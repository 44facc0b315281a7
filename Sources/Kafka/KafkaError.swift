import CRdKafka

/// An error reported by librdkafka or by this layer, with librdkafka's code and text kept intact.
///
/// The ``kind`` tells a caller what to do next, following librdkafka's own classification:
/// retry the same call, abort the current transaction, or stop using the client.
public struct KafkaError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What a caller should do about an error.
    public enum Kind: String, Sendable, Hashable {
        /// The call may succeed if it is made again, for example after a timeout.
        case retriable
        /// The current transaction cannot commit: abort it and rewind to the last committed offsets.
        case abortable
        /// The client cannot be used any more (for example it was fenced by a newer instance): close it.
        case fatal
        /// Neither retrying nor aborting helps; the request itself or the configuration is wrong.
        case permanent
    }

    /// librdkafka's error code (`rd_kafka_resp_err_t`): negative for local errors, positive for broker errors.
    public let code: Code
    /// librdkafka's human-readable text for this occurrence.
    public let message: String
    /// What this layer was doing when the error happened, for example `commit transaction`.
    public let operation: String
    /// What a caller should do about it.
    public let kind: Kind

    public init(code: Code, message: String, operation: String, kind: Kind? = nil) {
        self.code = code
        self.message = message
        self.operation = operation
        self.kind = kind ?? code.defaultKind
    }

    public var isRetriable: Bool { kind == .retriable }
    public var isFatal: Bool { kind == .fatal }
    public var requiresAbort: Bool { kind == .abortable }

    public var description: String {
        "\(operation) failed: \(message) [\(code.name) (\(code.rawValue)), \(kind.rawValue)]; \(advice)"
    }

    /// One sentence on what to do, derived from ``kind``.
    public var advice: String {
        switch kind {
        case .retriable: "retry the call"
        case .abortable: "abort the transaction and rewind to the last committed offsets"
        case .fatal: "close this client and create a new one"
        case .permanent: "fix the request or the configuration"
        }
    }
}

extension KafkaError {
    /// librdkafka's error code, named as librdkafka names it (`rd_kafka_err2name`).
    public struct Code: RawRepresentable, Sendable, Hashable, CustomStringConvertible {
        public let rawValue: Int32
        public init(rawValue: Int32) { self.rawValue = rawValue }

        init(_ native: rd_kafka_resp_err_t) { self.rawValue = native.rawValue }

        var native: rd_kafka_resp_err_t { rd_kafka_resp_err_t(rawValue: rawValue) }

        /// The symbolic name, for example `_MSG_TIMED_OUT` or `UNKNOWN_TOPIC_OR_PART`.
        public var name: String { String(cString: rd_kafka_err2name(native)) }
        /// librdkafka's generic text for the code.
        public var text: String { String(cString: rd_kafka_err2str(native)) }
        public var description: String { name }

        public static let noError = Code(RD_KAFKA_RESP_ERR_NO_ERROR)
        public static let failed = Code(RD_KAFKA_RESP_ERR__FAIL)
        public static let badMessage = Code(RD_KAFKA_RESP_ERR__BAD_MSG)
        public static let invalidArgument = Code(RD_KAFKA_RESP_ERR__INVALID_ARG)
        public static let timedOut = Code(RD_KAFKA_RESP_ERR__TIMED_OUT)
        public static let messageTimedOut = Code(RD_KAFKA_RESP_ERR__MSG_TIMED_OUT)
        public static let queueFull = Code(RD_KAFKA_RESP_ERR__QUEUE_FULL)
        public static let partitionEOF = Code(RD_KAFKA_RESP_ERR__PARTITION_EOF)
        public static let unknownPartition = Code(RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION)
        public static let unknownTopic = Code(RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC)
        public static let unknownTopicOrPartition = Code(RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART)
        public static let allBrokersDown = Code(RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN)
        public static let transport = Code(RD_KAFKA_RESP_ERR__TRANSPORT)
        public static let fatal = Code(RD_KAFKA_RESP_ERR__FATAL)
        public static let state = Code(RD_KAFKA_RESP_ERR__STATE)
        public static let notImplemented = Code(RD_KAFKA_RESP_ERR__NOT_IMPLEMENTED)
        public static let unsupportedFeature = Code(RD_KAFKA_RESP_ERR__UNSUPPORTED_FEATURE)
        public static let messageSizeTooLarge = Code(RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE)
        public static let notEnoughReplicas = Code(RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS)
        public static let producerFenced = Code(RD_KAFKA_RESP_ERR_PRODUCER_FENCED)
        /// librdkafka's local code for a transactional producer fenced by a newer instance.
        public static let fenced = Code(RD_KAFKA_RESP_ERR__FENCED)
        public static let invalidProducerEpoch = Code(RD_KAFKA_RESP_ERR_INVALID_PRODUCER_EPOCH)
        public static let coordinatorNotAvailable = Code(RD_KAFKA_RESP_ERR_COORDINATOR_NOT_AVAILABLE)
        public static let notCoordinator = Code(RD_KAFKA_RESP_ERR_NOT_COORDINATOR)
        public static let concurrentTransactions = Code(RD_KAFKA_RESP_ERR_CONCURRENT_TRANSACTIONS)
        public static let topicAuthorizationFailed = Code(RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED)
        public static let requestTimedOut = Code(RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT)

        /// The class of an error when librdkafka did not attach one (plain `rd_kafka_resp_err_t` results).
        var defaultKind: Kind {
            switch self {
            case .timedOut, .queueFull, .allBrokersDown, .transport, .requestTimedOut,
                .coordinatorNotAvailable, .notCoordinator, .concurrentTransactions,
                .notEnoughReplicas:
                .retriable
            case .fatal, .producerFenced, .fenced:
                .fatal
            default:
                .permanent
            }
        }
    }
}

extension KafkaError {
    /// Builds an error from a plain response code.
    init(_ err: rd_kafka_resp_err_t, operation: String, message: String? = nil) {
        let code = Code(err)
        self.init(code: code, message: message ?? code.text, operation: operation)
    }

    /// Takes ownership of an `rd_kafka_error_t` and destroys it, keeping its classification.
    init(consuming error: OpaquePointer, operation: String) {
        defer { rd_kafka_error_destroy(error) }
        let kind: Kind =
            if rd_kafka_error_is_fatal(error) != 0 {
                .fatal
            } else if rd_kafka_error_txn_requires_abort(error) != 0 {
                .abortable
            } else if rd_kafka_error_is_retriable(error) != 0 {
                .retriable
            } else {
                .permanent
            }
        self.init(
            code: Code(rd_kafka_error_code(error)),
            message: String(cString: rd_kafka_error_string(error)),
            operation: operation,
            kind: kind
        )
    }

    /// Throws when `err` is not `RD_KAFKA_RESP_ERR_NO_ERROR`.
    static func check(_ err: rd_kafka_resp_err_t, _ operation: @autoclosure () -> String) throws(KafkaError) {
        guard err != RD_KAFKA_RESP_ERR_NO_ERROR else { return }
        throw KafkaError(err, operation: operation())
    }

    /// Throws when librdkafka returned an `rd_kafka_error_t`, destroying it.
    static func check(_ error: OpaquePointer?, _ operation: @autoclosure () -> String) throws(KafkaError) {
        guard let error else { return }
        throw KafkaError(consuming: error, operation: operation())
    }
}
