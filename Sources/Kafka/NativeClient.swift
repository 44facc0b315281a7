import CRdKafka
import Synchronization

/// An `rd_kafka_t` and the Swift side of its callbacks.
///
/// librdkafka handles are thread-safe; callbacks run on whichever thread serves the handle's
/// queue (the thread inside `poll`, `flush`, `close` or a transaction call), never on a thread
/// of librdkafka's own, except log lines, which librdkafka's threads hand to
/// ``ClientEvents/onLog`` directly. The context is reached from C through the configuration's opaque pointer
/// and lives exactly as long as the handle.
final class NativeClient: @unchecked Sendable {
    let handle: OpaquePointer
    let context: ClientContext

    init(
        _ configuration: KafkaConfiguration,
        role: ClientRole,
        context: ClientContext = ClientContext(),
        configure: (OpaquePointer) -> Void = { _ in }
    ) throws(KafkaError) {
        let conf = try NativeConfiguration(configuration, role: role).pointer
        rd_kafka_conf_set_opaque(conf, Unmanaged.passUnretained(context).toOpaque())
        rd_kafka_conf_set_error_cb(conf) { _, err, reason, opaque in
            let code = rd_kafka_resp_err_t(rawValue: err)
            let message = reason.map { String(cString: $0) }
            let error = KafkaError(
                code: KafkaError.Code(code), message: message ?? KafkaError.Code(code).text, operation: "client",
                kind: code == RD_KAFKA_RESP_ERR__FATAL ? .fatal : nil)
            ClientContext.from(opaque).report(error)
        }
        rd_kafka_conf_set_stats_cb(conf) { _, json, length, opaque in
            if let json {
                ClientContext.from(opaque).reportStatistics(
                    String(decoding: UnsafeRawBufferPointer(start: json, count: length), as: UTF8.self))
            }
            return 0
        }
        if context.events.onLog != nil {
            rd_kafka_conf_set_log_cb(conf) { handle, level, facility, text in
                guard let handle, let opaque = rd_kafka_opaque(handle) else { return }
                ClientContext.from(opaque).events.onLog?(
                    ClientLogLine(
                        level: Int(level), facility: facility.map { String(cString: $0) } ?? "",
                        message: text.map { String(cString: $0) } ?? ""))
            }
        }
        configure(conf)
        var message = ErrorText()
        let type = role == .producer ? RD_KAFKA_PRODUCER : RD_KAFKA_CONSUMER
        guard let handle = message.fill({ rd_kafka_new(type, conf, $0, $1) }) else {
            rd_kafka_conf_destroy(conf)
            throw KafkaError(code: .invalidArgument, message: message.text, operation: "create \(role) client")
        }
        self.handle = handle
        self.context = context
    }

    deinit {
        rd_kafka_destroy(handle)
    }

    /// The fatal error that put this client out of service, if one was raised.
    var fatalError: KafkaError? {
        var message = ErrorText()
        let err = message.fill { rd_kafka_fatal_error(handle, $0, $1) }
        guard err != RD_KAFKA_RESP_ERR_NO_ERROR else { return nil }
        return KafkaError(code: KafkaError.Code(err), message: message.text, operation: "client", kind: .fatal)
    }
}

/// Handlers for events that librdkafka reports outside of any one call.
public struct ClientEvents: Sendable {
    /// Errors that do not belong to a call, such as all brokers going down. librdkafka keeps
    /// retrying on its own; these are for logging and health. A fatal one means the client is done.
    public var onError: (@Sendable (KafkaError) -> Void)?
    /// librdkafka's statistics JSON, every `statisticsInterval` (``ClientStatistics`` reads it).
    public var onStatistics: (@Sendable (String) -> Void)?
    /// librdkafka's own log lines, instead of its default of printing them to standard error.
    /// Called on librdkafka's threads, possibly before the client's initializer returns.
    public var onLog: (@Sendable (ClientLogLine) -> Void)?

    public init(
        onError: (@Sendable (KafkaError) -> Void)? = nil,
        onStatistics: (@Sendable (String) -> Void)? = nil,
        onLog: (@Sendable (ClientLogLine) -> Void)? = nil
    ) {
        self.onError = onError
        self.onStatistics = onStatistics
        self.onLog = onLog
    }
}

/// One of librdkafka's log lines.
public struct ClientLogLine: Sendable, Hashable {
    /// The syslog level: 0 emergency to 7 debug (3 error, 4 warning, 6 informational).
    public var level: Int
    /// librdkafka's subsystem, such as `FAIL`, `REQTMOUT` or `CONFWARN`.
    public var facility: String
    public var message: String
}

/// The state that C callbacks reach through the opaque pointer.
final class ClientContext: Sendable {
    let events: ClientEvents
    let rebalanceHandler = Mutex<(@Sendable (RebalanceEvent) -> Void)?>(nil)
    let deliveries = Mutex(Deliveries())
    /// An error raised inside a callback, for the consumer's next poll to throw.
    let pendingError = Mutex<KafkaError?>(nil)

    init(events: ClientEvents = ClientEvents()) {
        self.events = events
    }

    static func from(_ opaque: UnsafeMutableRawPointer?) -> ClientContext {
        Unmanaged<ClientContext>.fromOpaque(opaque!).takeUnretainedValue()
    }

    func report(_ error: KafkaError) {
        events.onError?(error)
    }

    /// Reports an error and keeps it for the next poll, unless an earlier one is still waiting.
    func fail(_ error: KafkaError) {
        report(error)
        pendingError.withLock { if $0 == nil { $0 = error } }
    }

    func reportStatistics(_ json: String) {
        events.onStatistics?(json)
    }
}

/// A client's consumer queue (`rd_kafka_queue_get_consumer`), released before its client.
final class NativeQueue: @unchecked Sendable {
    private let client: NativeClient
    private let pointer: OpaquePointer

    /// Nil when the client has no consumer group, hence no consumer queue.
    init?(consumerOf client: NativeClient) {
        guard let pointer = rd_kafka_queue_get_consumer(client.handle) else { return nil }
        self.client = client
        self.pointer = pointer
    }

    deinit { rd_kafka_queue_destroy(pointer) }

    func withPointer<Result>(_ body: (OpaquePointer) -> Result) -> Result {
        withExtendedLifetime(self) { body(pointer) }
    }
}

/// Delivery reports waiting to be handed back, with the topic names they share.
struct Deliveries: @unchecked Sendable {
    var reports: [DeliveryReport] = []
    /// Keyed by librdkafka's topic handle, which lives as long as the producer.
    private var topicNames: [OpaquePointer: String] = [:]
    private var last: (topic: OpaquePointer, name: String)?

    mutating func topicName(_ topic: OpaquePointer?) -> String {
        guard let topic else { return "" }
        if let last, last.topic == topic { return last.name }
        let name = topicNames[topic] ?? String(cString: rd_kafka_topic_name(topic))
        topicNames[topic] = name
        last = (topic, name)
        return name
    }
}
