import CRdKafka
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The settings of a Kafka client: typed fields for the options a stream processor sets most,
/// and ``properties`` for any other librdkafka property, passed through unchanged.
///
/// Nothing is checked until a client is created (or ``validate(for:)`` is called); then every
/// property is handed to librdkafka, and the first one it refuses is reported with its own text.
/// A key set both in a typed field and in ``properties`` takes the value from ``properties``.
public struct KafkaConfiguration: Sendable, Hashable {
    /// Where the client finds its first broker: `host:port[,host:port...]`.
    public var bootstrapServers: String
    public var clientID: String?

    // MARK: Consumer

    /// The consumer group; required to subscribe and to commit offsets.
    public var groupID: String?
    /// Static membership (KIP-345): a restart within the session timeout keeps the assignment.
    public var groupInstanceID: String?
    public var autoOffsetReset: OffsetReset?
    public var enableAutoCommit: Bool?
    public var enableAutoOffsetStore: Bool?
    public var isolationLevel: IsolationLevel?
    public var assignmentStrategy: AssignmentStrategy?
    public var sessionTimeout: Duration?
    public var heartbeatInterval: Duration?
    public var maxPollInterval: Duration?

    // MARK: Producer

    /// Idempotent production (no duplicates or reordering on retries). On by default.
    public var enableIdempotence: Bool = true
    /// Makes the producer transactional; unique per producing instance and stable across its restarts.
    public var transactionalID: String?
    public var transactionTimeout: Duration?
    public var acks: Acks?
    public var linger: Duration?
    public var compression: Compression?
    /// How long a record may wait for delivery, retries included, before it is reported as failed.
    public var deliveryTimeout: Duration?
    public var messageMaxBytes: Int?

    // MARK: Any client

    /// How often librdkafka emits its statistics JSON; nil leaves statistics off.
    public var statisticsInterval: Duration?
    /// Any librdkafka property (see librdkafka's CONFIGURATION.md), for example SASL and SSL settings.
    public var properties: [String: String]

    public init(bootstrapServers: String, properties: [String: String] = [:]) {
        self.bootstrapServers = bootstrapServers
        self.properties = properties
    }

    public enum OffsetReset: String, Sendable, Hashable {
        case earliest, latest
        /// Fail with an error instead of choosing a position.
        case error
    }

    public enum IsolationLevel: String, Sendable, Hashable {
        case readCommitted = "read_committed"
        case readUncommitted = "read_uncommitted"
    }

    /// How a consumer group hands out partitions.
    public enum AssignmentStrategy: String, Sendable, Hashable {
        /// Eager: every rebalance revokes all partitions first.
        case range
        /// Eager, round-robin over members.
        case roundRobin = "roundrobin"
        /// Incremental: only the partitions that move are revoked.
        case cooperativeSticky = "cooperative-sticky"
    }

    public enum Acks: String, Sendable, Hashable {
        case none = "0"
        case leader = "1"
        case all = "all"
    }

    public enum Compression: String, Sendable, Hashable {
        case none, gzip, snappy, lz4, zstd
    }

    /// Every property as librdkafka will receive it, typed fields first, for the given kind of client.
    public func librdkafkaProperties(for role: ClientRole) -> [(key: String, value: String)] {
        var entries: [(String, String)] = [("bootstrap.servers", bootstrapServers)]
        func add(_ key: String, _ value: String?) {
            if let value { entries.append((key, value)) }
        }
        add("client.id", clientID)
        add("statistics.interval.ms", statisticsInterval.map { String($0.milliseconds) })
        switch role {
        case .consumer:
            add("group.id", groupID)
            add("group.instance.id", groupInstanceID)
            add("auto.offset.reset", autoOffsetReset?.rawValue)
            add("enable.auto.commit", enableAutoCommit.map(String.init))
            add("enable.auto.offset.store", enableAutoOffsetStore.map(String.init))
            add("isolation.level", isolationLevel?.rawValue)
            add("partition.assignment.strategy", assignmentStrategy?.rawValue)
            add("session.timeout.ms", sessionTimeout.map { String($0.milliseconds) })
            add("heartbeat.interval.ms", heartbeatInterval.map { String($0.milliseconds) })
            add("max.poll.interval.ms", maxPollInterval.map { String($0.milliseconds) })
        case .producer:
            add("enable.idempotence", String(enableIdempotence))
            add("transactional.id", transactionalID)
            add("transaction.timeout.ms", transactionTimeout.map { String($0.milliseconds) })
            add("acks", acks?.rawValue)
            add("linger.ms", linger.map { String($0.milliseconds) })
            add("compression.codec", compression?.rawValue)
            add("delivery.timeout.ms", deliveryTimeout.map { String($0.milliseconds) })
            add("message.max.bytes", messageMaxBytes.map(String.init))
        }
        entries.removeAll { properties[$0.0] != nil }
        // A property of the other kind of client is left out: librdkafka would ignore it and
        // log a warning at every start. Unknown names go through, for librdkafka to refuse.
        for key in properties.keys.sorted() where PropertyScopes.role(of: key).map({ $0 == role }) ?? true {
            entries.append((key, properties[key]!))
        }
        return entries.map { (key: $0.0, value: $0.1) }
    }

    /// Checks every property with librdkafka without connecting anywhere.
    ///
    /// - Throws: ``KafkaError`` with librdkafka's text naming the first property it refuses.
    public func validate(for role: ClientRole) throws(KafkaError) {
        let conf = try NativeConfiguration(self, role: role)
        rd_kafka_conf_destroy(conf.pointer)
    }
}

/// The two kinds of librdkafka client.
public enum ClientRole: Sendable, Hashable {
    case producer, consumer
}

/// Which kind of client each librdkafka property is for, read once from librdkafka's own table
/// (`rd_kafka_conf_properties_show`, which CONFIGURATION.md is made from) so that it matches the
/// linked version: `C` for consumers, `P` for producers, `*` for both.
enum PropertyScopes {
    private static let roles: [String: ClientRole] = {
        var text: UnsafeMutablePointer<CChar>?
        var size = 0
        guard let stream = open_memstream(&text, &size) else { return [:] }
        rd_kafka_conf_properties_show(stream)
        fclose(stream)
        guard let text else { return [:] }
        defer { free(text) }
        var roles: [String: ClientRole] = [:]
        for line in String(cString: text).split(separator: "\n") {
            let columns = line.split(separator: "|", maxSplits: 2, omittingEmptySubsequences: false)
            guard columns.count == 3 else { continue }
            let name = String(columns[0].filter { $0 != " " })
            switch columns[1].filter({ $0 != " " }) {
            case "C": roles[name] = .consumer
            case "P": roles[name] = .producer
            default: break
            }
        }
        return roles
    }()

    /// The one kind of client `property` applies to; nil for both, or for a name librdkafka does not list.
    static func role(of property: String) -> ClientRole? { roles[property] }
}

/// An `rd_kafka_conf_t` filled from a ``KafkaConfiguration``; ownership passes to `rd_kafka_new`.
struct NativeConfiguration {
    let pointer: OpaquePointer

    init(_ configuration: KafkaConfiguration, role: ClientRole) throws(KafkaError) {
        let conf = rd_kafka_conf_new()!
        for (key, value) in configuration.librdkafkaProperties(for: role) {
            var message = ErrorText()
            let result = message.fill { rd_kafka_conf_set(conf, key, value, $0, $1) }
            guard result == RD_KAFKA_CONF_OK else {
                rd_kafka_conf_destroy(conf)
                throw KafkaError(
                    code: .invalidArgument,
                    message: message.text,
                    operation: "set configuration property \"\(key)\""
                )
            }
        }
        pointer = conf
    }
}

extension Duration {
    /// Whole milliseconds, rounded down, as librdkafka's `*.ms` properties and timeouts expect.
    var milliseconds: Int {
        let (seconds, attoseconds) = components
        return Int(seconds) * 1000 + Int(attoseconds / 1_000_000_000_000_000)
    }

    /// Milliseconds clamped to librdkafka's `int timeout_ms`.
    var timeoutMilliseconds: Int32 {
        Int32(clamping: max(0, milliseconds))
    }
}
