import Foundation
import Kafka
import UpshiftCore

/// How a ``StreamProcessor`` runs: where it reads, where it writes, and how it keeps time.
public struct RuntimeConfiguration: Sendable {
    /// Names the consumer group and prefixes the transactional id; instances of one application share it.
    public var applicationID: String
    /// Unique per instance and stable across its restarts (a pod name, say): the transactional id
    /// and, when static membership is on, the `group.instance.id`.
    public var instanceID: String
    /// The client settings (bootstrap servers, SASL/SSL, any librdkafka property).
    public var kafka: KafkaConfiguration
    /// Product-event topics, co-partitioned by customer id; a name starting with `^` is a pattern.
    public var inputTopics: [String]
    public var topics = OutputTopics()
    /// How often a transaction commits outputs, changelog and input offsets together.
    public var commitInterval: Duration = .milliseconds(100)
    public var clock: Clock = .wallClock
    public var guarantee: Guarantee = .exactlyOnce
    /// Records larger than this go to the dead-letter topic unparsed.
    public var maximumRecordBytes = 64 * 1024
    /// Keeps partitions across a restart within the session timeout (KIP-345).
    public var staticMembership = false
    /// How long a stop may take to commit, leave the group and flush before it gives up.
    public var shutdownTimeout: Duration = .seconds(30)
    /// How often each partition looks for customers idle for the program's idle TTL.
    public var expiryInterval: Duration = .seconds(60)

    public init(applicationID: String, instanceID: String, kafka: KafkaConfiguration, inputTopics: [String]) {
        self.applicationID = applicationID
        self.instanceID = instanceID
        self.kafka = kafka
        self.inputTopics = inputTopics
    }

    /// The input consumer's settings: librdkafka statistics every 15 s unless set (for the lag and
    /// queue metrics), the application's group, read_committed, offsets committed
    /// only with transactions (or, at least once, after delivery), and the instance id as
    /// `group.instance.id` under static membership.
    var consumerSettings: KafkaConfiguration {
        var settings = kafka
        settings.groupID = applicationID
        settings.enableAutoCommit = false
        settings.enableAutoOffsetStore = false
        settings.autoOffsetReset = settings.autoOffsetReset ?? .earliest
        settings.isolationLevel = .readCommitted
        settings.statisticsInterval = settings.statisticsInterval ?? .seconds(15)
        if staticMembership { settings.groupInstanceID = instanceID }
        return settings
    }

    /// The producer's settings: transactional, with an id stable across restarts so that a
    /// restarted instance fences its predecessor, under exactly-once.
    var producerSettings: KafkaConfiguration {
        var settings = kafka
        settings.statisticsInterval = settings.statisticsInterval ?? .seconds(15)
        if guarantee == .exactlyOnce { settings.transactionalID = "\(applicationID)-\(instanceID)" }
        return settings
    }

    /// What fires timers.
    public enum Clock: String, Sendable, Hashable, Codable {
        /// The machine's clock: timers fire on time even when no events arrive. The production default.
        case wallClock = "wall"
        /// The highest event time seen on the partition: a live run behaves as a replay does.
        case streamTime = "stream"
    }

    public enum Guarantee: String, Sendable, Hashable, Codable {
        /// Outputs, changelog and input offsets commit in one Kafka transaction.
        case exactlyOnce = "exactly_once"
        /// For brokers without transactions: a crash may repeat outputs, which carry their
        /// deterministic decision id so that consumers can drop duplicates.
        case atLeastOnce = "at_least_once"
    }
}

/// The topics Upshift writes, all keyed by customer id with JSON values.
public struct OutputTopics: Sendable, Hashable {
    public var email = "upshift.offers.email"
    public var inApp = "upshift.offers.in_app"
    public var sms = "upshift.offers.sms"
    public var push = "upshift.offers.push"
    public var customerSuccess = "upshift.tasks.customer_success"
    public var suppressions = "upshift.suppressions"
    public var holdouts = "upshift.holdouts"
    /// Workflow exits (and, with measurement, conversions).
    public var outcomes = "upshift.outcomes"
    /// Records that could not be processed, and events later than the allowed lateness.
    public var deadLetter = "upshift.dead-letter"
    /// The state store's compacted changelog, one partition per input partition.
    public var changelog = "upshift.changelog"
    /// Variants paused by a guardrail, keyed by arm (compacted, one partition), read by every instance.
    public var control = "upshift.control"

    public init() {}

    /// Every topic, for creating them.
    public var all: [String] {
        [email, inApp, sms, push, customerSuccess, suppressions, holdouts, outcomes, deadLetter, changelog, control]
    }
}

extension EmbeddedKafkaCluster {
    /// Creates the input topics with `partitions` partitions, the changelog with as many, and every
    /// output topic with one: what a processor with this configuration needs on the embedded broker,
    /// which does not answer CreateTopics.
    public func createTopics(for configuration: RuntimeConfiguration, inputPartitions partitions: Int) throws {
        for topic in configuration.inputTopics { try createTopic(topic, partitions: partitions) }
        for topic in configuration.topics.all {
            try createTopic(topic, partitions: topic == configuration.topics.changelog ? partitions : 1)
        }
    }
}

extension Timestamp {
    /// The machine's clock, for the wall-clock mode; the core itself never reads it.
    static var now: Timestamp { Timestamp(milliseconds: Int64(Date().timeIntervalSince1970 * 1000)) }
}
