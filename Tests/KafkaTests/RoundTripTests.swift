import Kafka
import Testing

@Suite("Producing and consuming")
struct RoundTripTests {
    @Test func hundredThousandRecordsKeepKeysHeadersAndOrderPerKey() async throws {
        let topic = try makeTopic("round-trip", partitions: 8)
        let count = 100_000
        let keys = 500
        let records = (0..<count).map { index in
            ProducerRecord(
                topic: topic,
                key: bytes("customer-\(index % keys)"),
                value: bytes("\(index)"),
                headers: [KafkaHeader("sequence", "\(index / keys)"), KafkaHeader("empty", nil)],
                timestamp: 1_700_000_000_000 + Int64(index)
            )
        }
        try await blocking { try produce(records) }

        let consumed = try await blocking {
            try poll(try reader(of: topic, partitions: 8), count: count, within: .seconds(60))
        }

        #expect(consumed.count == count)
        var nextSequence: [String: Int] = [:]
        var partitionOfKey: [String: Int32] = [:]
        for record in consumed {
            let key = try #require(text(record.key))
            let index = try #require(Int(text(record.value) ?? ""))
            #expect(key == "customer-\(index % keys)")
            #expect(record.headers == [KafkaHeader("sequence", "\(index / keys)"), KafkaHeader("empty", nil)])
            #expect(record.timestamp == KafkaTimestamp(kind: .createTime, milliseconds: 1_700_000_000_000 + Int64(index)))
            #expect(index / keys == nextSequence[key, default: 0], "records of \(key) out of order")
            nextSequence[key] = index / keys + 1
            #expect(partitionOfKey[key, default: record.partition] == record.partition)
            partitionOfKey[key] = record.partition
        }
        #expect(nextSequence.values.allSatisfy { $0 == count / keys })
        #expect(Set(partitionOfKey.values).count == 8)
    }

    @Test func recordGoesToTheChosenPartitionWithEmptyAndMissingParts() async throws {
        let topic = try makeTopic("explicit-partition", partitions: 3)
        try await blocking {
            try produce([
                ProducerRecord(topic: topic, partition: 2, key: nil, value: []),
                ProducerRecord(topic: topic, partition: 2, key: [], value: nil),
            ])
        }
        let consumed = try await blocking { try poll(try reader(of: topic, partitions: 3), count: 2) }

        try #require(consumed.count == 2)
        #expect(consumed.map(\.partition) == [2, 2])
        #expect(consumed.map(\.offset) == [0, 1])
        #expect(consumed[0].key == nil && consumed[0].value == [])
        #expect(consumed[1].key == [] && consumed[1].value == nil)
    }

    @Test func deliveryReportsCarryTheIdsSendReturned() async throws {
        let topic = try makeTopic("delivery-ids", partitions: 1)
        let (ids, reports) = try await blocking {
            let producer = try KafkaProducer(configuration: configuration())
            let ids = try (0..<3).map { _ in try producer.send(ProducerRecord(topic: topic, key: nil, value: bytes("x"))) }
            return (ids, try producer.flush(timeout: .seconds(10)))
        }

        #expect(reports.map(\.id) == ids)
        #expect(reports.map(\.result) == [0, 1, 2].map { .success(.init(partition: 0, offset: $0)) })
    }
}
