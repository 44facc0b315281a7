import Foundation

/// The part of librdkafka's statistics JSON (see its STATISTICS.md) that an operator watches:
/// queue depths, broker round trips and consumer lag. Enable it with
/// ``KafkaConfiguration/statisticsInterval`` and receive it through ``ClientEvents/onStatistics``.
public struct ClientStatistics: Sendable, Hashable {
    /// The client's name, such as `rdkafka#producer-1`.
    public var name: String
    /// `producer` or `consumer`.
    public var type: String
    /// Messages waiting in the producer's queues.
    public var queuedMessages: Int
    public var brokers: [Broker]
    /// Partitions this client reads or writes (librdkafka's internal unassigned partition left out).
    public var partitions: [Partition]

    public struct Broker: Sendable, Hashable {
        /// The broker's name as librdkafka knows it, `host:port/id`.
        public var name: String
        public var nodeID: Int
        /// The average request round trip over the last statistics window, if there were requests.
        public var averageRoundTrip: Duration?
        /// Requests sent and waiting for a response.
        public var awaitingResponse: Int
    }

    public struct Partition: Sendable, Hashable {
        public var topic: String
        public var partition: Int32
        /// How many records the consumer is behind the partition's end (or its last stable offset
        /// under read_committed); nil when not known yet.
        public var consumerLag: Int64?
        /// Records fetched and waiting to be polled.
        public var fetchQueue: Int
    }

    /// Parses one statistics document.
    ///
    /// - Throws: ``KafkaError`` `badMessage` when the text is not librdkafka's statistics JSON.
    public init(json: String) throws(KafkaError) {
        guard let root = (try? JSONSerialization.jsonObject(with: Data(json.utf8))) as? [String: Any],
            let name = root["name"] as? String, let type = root["type"] as? String
        else {
            throw KafkaError(code: .badMessage, message: "not librdkafka statistics JSON", operation: "read statistics")
        }
        self.name = name
        self.type = type
        queuedMessages = Self.int(root["msg_cnt"]) ?? 0
        brokers = ((root["brokers"] as? [String: Any]) ?? [:]).compactMap { name, value in
            guard let broker = value as? [String: Any], let nodeID = Self.int(broker["nodeid"]), nodeID >= 0 else { return nil }
            let average = Self.int((broker["rtt"] as? [String: Any])?["avg"]).flatMap { $0 > 0 ? Duration.microseconds($0) : nil }
            return Broker(name: name, nodeID: nodeID, averageRoundTrip: average, awaitingResponse: Self.int(broker["waitresp_cnt"]) ?? 0)
        }.sorted { $0.nodeID < $1.nodeID }
        var partitions: [Partition] = []
        for (topic, value) in (root["topics"] as? [String: Any]) ?? [:] {
            for (_, entry) in ((value as? [String: Any])?["partitions"] as? [String: Any]) ?? [:] {
                guard let fields = entry as? [String: Any], let id = Self.int(fields["partition"]), id >= 0 else { continue }
                let lag = Self.int(fields["consumer_lag"]).flatMap { $0 >= 0 ? Int64($0) : nil }
                partitions.append(Partition(topic: topic, partition: Int32(id), consumerLag: lag, fetchQueue: Self.int(fields["fetchq_cnt"]) ?? 0))
            }
        }
        self.partitions = partitions.sorted { ($0.topic, $0.partition) < ($1.topic, $1.partition) }
    }

    private static func int(_ value: Any?) -> Int? {
        (value as? NSNumber)?.intValue
    }
}
