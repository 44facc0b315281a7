import CRdKafka

/// A topic to create.
public struct NewTopic: Sendable, Hashable {
    public var name: String
    public var partitions: Int
    /// Copies of each partition; -1 takes the broker's `default.replication.factor`.
    public var replicationFactor: Int
    /// Topic configs, for example `["cleanup.policy": "compact"]`.
    public var configs: [String: String]

    public init(name: String, partitions: Int, replicationFactor: Int = -1, configs: [String: String] = [:]) {
        self.name = name
        self.partitions = partitions
        self.replicationFactor = replicationFactor
        self.configs = configs
    }
}

/// A topic as the cluster describes it.
public struct TopicDescription: Sendable, Hashable {
    public var name: String
    public var partitions: [PartitionDescription]
}

/// A partition as the cluster describes it.
public struct PartitionDescription: Sendable, Hashable {
    public var id: Int32
    /// The leader's broker id, -1 when there is none.
    public var leader: Int32
    public var replicas: [Int32]
    public var inSyncReplicas: [Int32]
}

/// Topic administration against a real cluster.
///
/// The embedded test broker (librdkafka 2.0.2's mock cluster) does not answer CreateTopics: create
/// topics there with ``EmbeddedKafkaCluster/createTopic(_:partitions:)``. Listing and describing work on both.
///
/// Threading: every method blocks the calling thread until the cluster answers or the timeout passes.
public final class KafkaAdmin: Sendable {
    private let client: NativeClient

    public init(configuration: KafkaConfiguration, events: ClientEvents = ClientEvents()) throws(KafkaError) {
        client = try NativeClient(configuration, role: .producer, context: ClientContext(events: events))
    }

    /// Creates topics; with `ifNotExists`, a topic that already exists is not an error.
    ///
    /// - Throws: ``KafkaError`` for the first topic the cluster refused, naming it, with the broker's text.
    public func createTopics(_ topics: [NewTopic], ifNotExists: Bool = false, timeout: Duration = .seconds(30))
        throws(KafkaError)
    {
        var natives: [OpaquePointer?] = []
        defer { natives.forEach { rd_kafka_NewTopic_destroy($0) } }
        for topic in topics {
            var message = ErrorText()
            guard
                let native = message.fill({
                    rd_kafka_NewTopic_new(topic.name, Int32(topic.partitions), Int32(topic.replicationFactor), $0, $1)
                })
            else {
                throw KafkaError(code: .invalidArgument, message: message.text, operation: "create topic \(topic.name)")
            }
            natives.append(native)
            for (key, value) in topic.configs.sorted(by: { $0.key < $1.key }) {
                try KafkaError.check(
                    rd_kafka_NewTopic_set_config(native, key, value), "set config \(key) of topic \(topic.name)")
            }
        }
        let options = rd_kafka_AdminOptions_new(client.handle, RD_KAFKA_ADMIN_OP_CREATETOPICS)
        defer { rd_kafka_AdminOptions_destroy(options) }
        var message = ErrorText()
        _ = message.fill { rd_kafka_AdminOptions_set_request_timeout(options, timeout.timeoutMilliseconds, $0, $1) }
        _ = message.fill { rd_kafka_AdminOptions_set_operation_timeout(options, timeout.timeoutMilliseconds, $0, $1) }

        let queue = rd_kafka_queue_new(client.handle)
        defer { rd_kafka_queue_destroy(queue) }
        natives.withUnsafeMutableBufferPointer { buffer in
            rd_kafka_CreateTopics(client.handle, buffer.baseAddress, buffer.count, options, queue)
        }
        // The request carries its own timeout; allow a little more for the answer to arrive.
        guard let event = rd_kafka_queue_poll(queue, (timeout + .seconds(5)).timeoutMilliseconds) else {
            throw KafkaError(code: .timedOut, message: "no answer to CreateTopics", operation: "create topics")
        }
        defer { rd_kafka_event_destroy(event) }
        let err = rd_kafka_event_error(event)
        if err != RD_KAFKA_RESP_ERR_NO_ERROR {
            throw KafkaError(
                err, operation: "create topics", message: rd_kafka_event_error_string(event).map { String(cString: $0) })
        }
        var count = 0
        let results = rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(event), &count)
        for index in 0..<count {
            let result = results![index]
            let err = rd_kafka_topic_result_error(result)
            if err == RD_KAFKA_RESP_ERR_NO_ERROR || (ifNotExists && err == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
                continue
            }
            let name = String(cString: rd_kafka_topic_result_name(result))
            throw KafkaError(
                err, operation: "create topic \(name)",
                message: rd_kafka_topic_result_error_string(result).map { String(cString: $0) })
        }
    }

    /// The names of the cluster's topics, sorted, internal ones (starting with `__`) left out.
    public func listTopics(timeout: Duration = .seconds(10)) throws(KafkaError) -> [String] {
        try metadata(timeout: timeout).map(\.name).filter { !$0.hasPrefix("__") }.sorted()
    }

    /// Describes topics and their partitions.
    ///
    /// - Throws: ``KafkaError`` `UNKNOWN_TOPIC_OR_PART` naming the first topic that does not exist.
    public func describeTopics(_ names: [String], timeout: Duration = .seconds(10)) throws(KafkaError)
        -> [TopicDescription]
    {
        let all = Dictionary(uniqueKeysWithValues: try metadata(timeout: timeout).map { ($0.name, $0) })
        return try names.map { name throws(KafkaError) in
            guard let topic = all[name] else {
                throw KafkaError(
                    code: .unknownTopicOrPartition, message: "topic \"\(name)\" does not exist",
                    operation: "describe topic \(name)")
            }
            return topic
        }
    }

    private func metadata(timeout: Duration) throws(KafkaError) -> [TopicDescription] {
        var metadata: UnsafePointer<rd_kafka_metadata_t>?
        try KafkaError.check(
            rd_kafka_metadata(client.handle, 1, nil, &metadata, timeout.timeoutMilliseconds), "read cluster metadata")
        defer { rd_kafka_metadata_destroy(metadata) }
        let topics = UnsafeBufferPointer(start: metadata!.pointee.topics, count: Int(metadata!.pointee.topic_cnt))
        return topics.compactMap { topic in
            guard topic.err == RD_KAFKA_RESP_ERR_NO_ERROR else { return nil }
            let partitions = UnsafeBufferPointer(start: topic.partitions, count: Int(topic.partition_cnt))
            return TopicDescription(
                name: String(cString: topic.topic),
                partitions: partitions.map { partition in
                    PartitionDescription(
                        id: partition.id,
                        leader: partition.leader,
                        replicas: Array(UnsafeBufferPointer(start: partition.replicas, count: Int(partition.replica_cnt))),
                        inSyncReplicas: Array(UnsafeBufferPointer(start: partition.isrs, count: Int(partition.isr_cnt)))
                    )
                }.sorted { $0.id < $1.id }
            )
        }
    }
}
