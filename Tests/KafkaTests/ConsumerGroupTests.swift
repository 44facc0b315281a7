import Kafka
import Synchronization
import Testing

/// The partitions a group member holds, kept up to date by its rebalance handler.
final class AssignmentLog: Sendable {
    private let state = Mutex<(owned: Set<TopicPartition>, events: [RebalanceEvent])>(([], []))

    var owned: Set<TopicPartition> { state.withLock { $0.owned } }
    var events: [RebalanceEvent] { state.withLock { $0.events } }

    func record(_ event: RebalanceEvent) {
        state.withLock { state in
            state.events.append(event)
            switch event {
            case .assigned(let partitions): state.owned.formUnion(partitions)
            case .revoked(let partitions, _): state.owned.subtract(partitions)
            }
        }
    }
}

@Suite("Consumer groups and offsets")
struct ConsumerGroupTests {
    @Test(arguments: [KafkaConfiguration.AssignmentStrategy.range, .cooperativeSticky])
    func twoMembersSplitTwelvePartitionsAndTheSurvivorTakesAllWhenOneLeaves(
        strategy: KafkaConfiguration.AssignmentStrategy
    ) async throws {
        let topic = try makeTopic("split", partitions: 12)
        let all = Set((0..<12).map { TopicPartition(topic, Int32($0)) })
        let group = uniqueName("split-group")
        let settings = configuration(group: group) { $0.assignmentStrategy = strategy }
        let first = try KafkaConsumer(configuration: settings)
        let second = try KafkaConsumer(configuration: settings)
        let firstLog = AssignmentLog()
        let secondLog = AssignmentLog()
        try first.subscribe(to: [topic], onRebalance: firstLog.record)

        #expect(try await blocking { try poll(first, until: { firstLog.owned == all }) })

        try second.subscribe(to: [topic], onRebalance: secondLog.record)
        async let firstSettled = blocking {
            try poll(first, until: { firstLog.owned.count == 6 && secondLog.owned.count == 6 })
        }
        async let secondSettled = blocking {
            try poll(second, until: { firstLog.owned.count == 6 && secondLog.owned.count == 6 })
        }
        #expect(try await (firstSettled, secondSettled) == (true, true))
        let kept = firstLog.owned.sorted()
        let moved = secondLog.owned.sorted()
        #expect(Set(kept).union(moved) == all)
        #expect(try first.assignment() == kept)

        try await blocking { try second.close() }
        #expect(try await blocking { try poll(first, until: { firstLog.owned == all }) })

        let everything = all.sorted()
        #expect(secondLog.events == [.assigned(moved), .revoked(moved, lost: false)])
        switch strategy {
        case .cooperativeSticky:
            #expect(first.rebalanceProtocol == "COOPERATIVE")
            #expect(firstLog.events == [.assigned(everything), .revoked(moved, lost: false), .assigned(moved)])
        default:
            #expect(first.rebalanceProtocol == "EAGER")
            // Eager: each rebalance revokes everything and assigns anew. While the second member
            // joins, the broker may rebalance more than once (it did under a loaded machine), but
            // every round while both are in gives the first member the same half.
            let events = firstLog.events
            let rounds = (events.count - 3) / 2
            #expect(rounds >= 1)
            #expect(
                events == [.assigned(everything), .revoked(everything, lost: false)]
                    + Array(repeating: [RebalanceEvent.assigned(kept), .revoked(kept, lost: false)], count: rounds).joined()
                    + [.assigned(everything)])
        }
        try await blocking { try first.close() }
    }

    @Test func patternSubscriptionReadsEveryMatchingTopic() async throws {
        let prefix = uniqueName("pattern")
        try sharedCluster.createTopic("\(prefix)-a", partitions: 1)
        try sharedCluster.createTopic("\(prefix)-b", partitions: 1)
        try sharedCluster.createTopic("\(prefix)x-c", partitions: 1)
        try await blocking {
            try produce(
                ["\(prefix)-a", "\(prefix)-b", "\(prefix)x-c"].map { ProducerRecord(topic: $0, key: nil, value: []) })
        }
        let topics = try await blocking {
            let consumer = try KafkaConsumer(configuration: configuration(group: uniqueName("pattern-group")))
            try consumer.subscribe(to: ["^\(prefix)-[ab]$"])
            let records = try poll(consumer, count: 2)
            try consumer.close()
            return records.map(\.topic).sorted()
        }
        #expect(topics == ["\(prefix)-a", "\(prefix)-b"])
    }

    @Test func committedOffsetsResumeAfterARestart() async throws {
        let topic = try makeTopic("resume", partitions: 1)
        let group = uniqueName("resume-group")
        try await blocking {
            try produce((0..<100).map { ProducerRecord(topic: topic, key: nil, value: bytes("\($0)")) })
        }

        let firstRun = try await blocking {
            let consumer = try KafkaConsumer(configuration: configuration(group: group))
            try consumer.subscribe(to: [topic])
            let records = try poll(consumer, count: 100)
            try consumer.commit([records[39].nextOffset])
            let committed = try consumer.committed([TopicPartition(topic, 0)])
            try consumer.close()
            return (records.count, committed)
        }
        #expect(firstRun.0 == 100)
        #expect(firstRun.1 == [TopicPartitionOffset(topic, 0, 40)])

        let resumed = try await blocking {
            let consumer = try KafkaConsumer(configuration: configuration(group: group))
            try consumer.subscribe(to: [topic])
            let records = try poll(consumer, count: 60)
            try consumer.close()
            return records
        }
        #expect(resumed.map(\.offset) == Array(40..<100))
        #expect(resumed.first.flatMap { text($0.value) } == "40")
    }

    @Test func asynchronousCommitReportsItsOffsetsInALaterPoll() async throws {
        let topic = try makeTopic("async-commit", partitions: 2)
        let group = uniqueName("async-commit-group")
        try await blocking {
            try produce((0..<10).map { ProducerRecord(topic: topic, partition: Int32($0 % 2), key: nil, value: []) })
        }
        let outcome = Mutex<Result<[TopicPartitionOffset], KafkaError>?>(nil)
        let committed = try await blocking {
            let consumer = try reader(of: topic, partitions: 2, group: group)
            _ = try poll(consumer, count: 10)
            consumer.commit([TopicPartitionOffset(topic, 0, 5), TopicPartitionOffset(topic, 1, 3)]) { result in
                outcome.withLock { $0 = result }
            }
            _ = try poll(consumer, until: { outcome.withLock { $0 != nil } })
            return try consumer.committed([TopicPartition(topic, 0), TopicPartition(topic, 1)])
        }
        let expected = [TopicPartitionOffset(topic, 0, 5), TopicPartitionOffset(topic, 1, 3)]
        #expect(try outcome.withLock { $0 }?.get() == expected)
        #expect(committed == expected)
    }

    @Test func storedOffsetsAreWhatAnArgumentlessCommitCommits() async throws {
        let topic = try makeTopic("store", partitions: 1)
        let group = uniqueName("store-group")
        try await blocking { try produce((0..<5).map { _ in ProducerRecord(topic: topic, key: nil, value: []) }) }
        let committed = try await blocking {
            let consumer = try KafkaConsumer(
                configuration: configuration(group: group) { $0.enableAutoOffsetStore = false })
            try consumer.assign([TopicPartitionOffset(topic, 0, .beginning)])
            let records = try poll(consumer, count: 5)
            try consumer.store([records[2].nextOffset])
            try consumer.commit()
            return try consumer.committed([TopicPartition(topic, 0)])
        }
        #expect(committed == [TopicPartitionOffset(topic, 0, 3)])
    }

    @Test func seekPauseResumeAndPositionMoveTheReadPosition() async throws {
        let topic = try makeTopic("seek", partitions: 2)
        try await blocking {
            try produce((0..<20).map { ProducerRecord(topic: topic, partition: Int32($0 % 2), key: nil, value: []) })
        }
        let (afterSeek, whilePaused, afterResume, position, watermarks) = try await blocking {
            let consumer = try reader(of: topic, partitions: 2)
            _ = try poll(consumer, count: 20)
            try consumer.seek([TopicPartitionOffset(topic, 0, 7)])
            let afterSeek = try poll(consumer, count: 3)
            try consumer.seek([TopicPartitionOffset(topic, 0, 8), TopicPartitionOffset(topic, 1, 9)])
            try consumer.pause([TopicPartition(topic, 1)])
            let whilePaused = try poll(consumer, count: 3, within: .seconds(2))
            try consumer.resume([TopicPartition(topic, 1)])
            let afterResume = try poll(consumer, count: 1)
            let position = try consumer.position([TopicPartition(topic, 0), TopicPartition(topic, 1)])
            let watermarks = try consumer.watermarks(of: TopicPartition(topic, 1))
            return (afterSeek, whilePaused, afterResume, position, watermarks)
        }
        #expect(afterSeek.map { [Int64($0.partition), $0.offset] } == [[0, 7], [0, 8], [0, 9]])
        #expect(whilePaused.map { [Int64($0.partition), $0.offset] } == [[0, 8], [0, 9]])
        #expect(afterResume.map { [Int64($0.partition), $0.offset] } == [[1, 9]])
        #expect(position == [TopicPartitionOffset(topic, 0, 10), TopicPartitionOffset(topic, 1, 10)])
        #expect(watermarks == (low: 0, high: 10))
    }
}
