import CRdKafka

/// An owned `rd_kafka_topic_partition_list_t`, destroyed when this object is.
///
/// The pointer is reachable only inside ``withPointer(_:)``, which keeps the object alive for the
/// duration of the C call; ARC may otherwise free it right after its last Swift use.
final class NativePartitionList {
    private let pointer: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>

    init(_ offsets: some Collection<TopicPartitionOffset>) {
        pointer = rd_kafka_topic_partition_list_new(Int32(clamping: offsets.count))
        for entry in offsets {
            let element = rd_kafka_topic_partition_list_add(
                pointer, entry.topicPartition.topic, entry.topicPartition.partition)!
            element.pointee.offset = entry.offset.rawValue
        }
    }

    convenience init(_ partitions: some Collection<TopicPartition>) {
        self.init(partitions.map { TopicPartitionOffset($0, .invalid) })
    }

    /// Takes ownership of a list librdkafka returned.
    init(owning pointer: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>) {
        self.pointer = pointer
    }

    deinit { rd_kafka_topic_partition_list_destroy(pointer) }

    func withPointer<Result>(_ body: (UnsafeMutablePointer<rd_kafka_topic_partition_list_t>) -> Result) -> Result {
        withExtendedLifetime(self) { body(pointer) }
    }

    var offsets: [TopicPartitionOffset] { withPointer { Self.offsets(in: $0) } }

    /// The first per-partition error set by librdkafka, if any.
    func firstError(operation: String) -> KafkaError? {
        let list = withPointer { $0.pointee }
        for index in 0..<Int(list.cnt) where list.elems[index].err != RD_KAFKA_RESP_ERR_NO_ERROR {
            let element = list.elems[index]
            let partition = TopicPartition(String(cString: element.topic), element.partition)
            return KafkaError(element.err, operation: "\(operation) for \(partition)")
        }
        return nil
    }

    /// Reads a list owned by librdkafka without taking ownership.
    static func offsets(in pointer: UnsafePointer<rd_kafka_topic_partition_list_t>) -> [TopicPartitionOffset] {
        let list = pointer.pointee
        return (0..<Int(list.cnt)).map { index in
            let element = list.elems[index]
            return TopicPartitionOffset(String(cString: element.topic), element.partition, KafkaOffset(element.offset))
        }
    }
}

/// Converts consumed messages to ``ConsumerRecord``s, remembering topic names so that a batch
/// of records from one topic shares one `String`.
struct RecordDecoder {
    private var topicNames: [OpaquePointer: String] = [:]

    mutating func record(from message: UnsafeMutablePointer<rd_kafka_message_t>) -> ConsumerRecord {
        let m = message.pointee
        let topic = topicName(m.rkt)
        var type = RD_KAFKA_TIMESTAMP_NOT_AVAILABLE
        let milliseconds = rd_kafka_message_timestamp(message, &type)
        let timestamp: KafkaTimestamp? =
            switch type {
            case RD_KAFKA_TIMESTAMP_CREATE_TIME: KafkaTimestamp(kind: .createTime, milliseconds: milliseconds)
            case RD_KAFKA_TIMESTAMP_LOG_APPEND_TIME: KafkaTimestamp(kind: .logAppendTime, milliseconds: milliseconds)
            default: nil
            }
        return ConsumerRecord(
            topic: topic,
            partition: m.partition,
            offset: m.offset,
            key: Self.bytes(m.key, m.key_len),
            value: Self.bytes(m.payload, m.len),
            headers: Self.headers(of: message),
            timestamp: timestamp
        )
    }

    private mutating func topicName(_ topic: OpaquePointer?) -> String {
        guard let topic else { return "" }
        if let name = topicNames[topic] { return name }
        let name = String(cString: rd_kafka_topic_name(topic))
        topicNames[topic] = name
        return name
    }

    static func bytes(_ pointer: UnsafeRawPointer?, _ count: Int) -> [UInt8]? {
        guard let pointer else { return nil }
        return Array(UnsafeRawBufferPointer(start: pointer, count: count))
    }

    private static func headers(of message: UnsafeMutablePointer<rd_kafka_message_t>) -> [KafkaHeader] {
        var native: OpaquePointer?
        guard rd_kafka_message_headers(message, &native) == RD_KAFKA_RESP_ERR_NO_ERROR, let native else { return [] }
        var headers: [KafkaHeader] = []
        var index = 0
        var name: UnsafePointer<CChar>?
        var value: UnsafeRawPointer?
        var size = 0
        while rd_kafka_header_get_all(native, index, &name, &value, &size) == RD_KAFKA_RESP_ERR_NO_ERROR {
            headers.append(KafkaHeader(String(cString: name!), bytes(value, size)))
            index += 1
        }
        return headers
    }
}
