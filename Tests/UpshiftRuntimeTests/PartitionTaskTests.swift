import Kafka
import Testing
import UpshiftCore
@testable import UpshiftRuntime

@Suite("Partition tasks")
struct PartitionTaskTests {
    /// A generated stream for one partition, as the consumer hands it over, from offset 0.
    private func records(_ count: Int) -> [ConsumerRecord] {
        PopulationGenerator(customers: 6, events: count, start: ISO8601.parse("2026-03-01T00:00:00Z")!, days: 5, seed: 3).records()
            .prefix(count).enumerated().map { offset, line in
                ConsumerRecord(topic: "events", partition: 0, offset: Int64(offset), key: nil, value: Array(line.utf8), headers: [])
            }
    }

    private func task() throws -> PartitionTask {
        let program = try examples()
        return PartitionTask(partition: 0, program: program, restored: Changelog.Restorer(program: program), changelogTopic: "changelog")
    }

    /// A consumer whose position went back behind the task's (librdkafka #2256, or a reset to the
    /// earliest offset) hands over records the state already holds: they are not applied again,
    /// and the state is the one the stream makes read once.
    @Test func recordsBeforeTheTasksPositionAreNotAppliedAgain() throws {
        let stream = records(120)
        var once = try task()
        _ = once.process(stream[...], decoder: EventDecoder())

        var again = try task()
        _ = again.process(stream[..<80], decoder: EventDecoder())
        let outcomes = again.process(stream[50...], decoder: EventDecoder())

        let readAgain = outcomes.prefix { if case .alreadyRead = $0 { true } else { false } }.count
        #expect(readAgain == 30)
        #expect(outcomes.dropFirst(30).allSatisfy { if case .alreadyRead = $0 { false } else { true } })
        #expect(again.offsets == [TopicPartition("events", 0): 120])
        // Compared apart from the expectation, whose failure would print every state whole.
        let sameStates = again.engine.states == once.engine.states
        #expect(sameStates, "the states differ from those the stream makes read once")
    }
}
