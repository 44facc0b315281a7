import Foundation
import Kafka
import Synchronization
import Testing
import UpshiftCore
@testable import UpshiftRuntime

private let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

private func examples() throws -> Program {
    let files = try ["shared.yaml", "saas-quota.yaml", "ecommerce-warranty.yaml", "subscription-renewal.yaml"].map { name in
        (name: name, text: try String(contentsOf: repository.appendingPathComponent("deploy/workflows/\(name)"), encoding: .utf8))
    }
    return try ProgramLoader.load(files)
}

/// A cluster with the input, output and changelog topics of one test.
private func prepare(partitions: Int) throws -> (EmbeddedKafkaCluster, RuntimeConfiguration) {
    let cluster = try EmbeddedKafkaCluster(brokers: 1)
    var kafka = KafkaConfiguration(bootstrapServers: cluster.bootstrapServers)
    kafka.sessionTimeout = .seconds(6)
    kafka.properties["heartbeat.interval.ms"] = "500"
    var configuration = RuntimeConfiguration(applicationID: "upshift-test", instanceID: "instance-1", kafka: kafka, inputTopics: ["events"])
    configuration.clock = .streamTime
    try cluster.createTopic("events", partitions: partitions)
    for topic in configuration.topics.all {
        try cluster.createTopic(topic, partitions: topic == configuration.topics.changelog ? partitions : 1)
    }
    return (cluster, configuration)
}

/// Produces records keyed by their customer id, as a CDP would.
private func produce(_ lines: [String], to cluster: EmbeddedKafkaCluster) throws {
    let producer = try KafkaProducer(configuration: KafkaConfiguration(bootstrapServers: cluster.bootstrapServers))
    let decoder = EventDecoder()
    for line in lines {
        let key = (try? decoder.decode(line))?.customerID ?? "unknown"
        try producer.send(ProducerRecord(topic: "events", key: Array(key.utf8), value: Array(line.utf8)))
    }
    let failures = try producer.flush(timeout: .seconds(30)).filter { (try? $0.result.get()) == nil }
    #expect(failures.isEmpty)
}

/// Every record of a topic, read_committed.
private func readAll(_ topic: String, from cluster: EmbeddedKafkaCluster) throws -> [ConsumerRecord] {
    var settings = KafkaConfiguration(bootstrapServers: cluster.bootstrapServers)
    settings.groupID = "reader-\(topic)"
    settings.isolationLevel = .readCommitted
    let reader = try KafkaConsumer(configuration: settings)
    let partition = TopicPartition(topic, 0)
    let (_, end) = try reader.watermarks(of: partition)
    guard end > 0 else { return [] }
    try reader.assign([TopicPartitionOffset(partition, .beginning)])
    var records: [ConsumerRecord] = []
    while records.count < end {
        let batch = try reader.poll(maxRecords: 10_000, timeout: .seconds(5))
        if batch.isEmpty { break }
        records += batch
    }
    return records
}

private func waitUntil(_ condition: () -> Bool, timeout: Duration = .seconds(60)) async throws -> Bool {
    let end = ContinuousClock.now + timeout
    while !condition() {
        if ContinuousClock.now > end { return false }
        try await Task.sleep(for: .milliseconds(100))
    }
    return true
}

@Suite("Stream processor", .serialized)
struct StreamProcessorTests {
    @Test func decidesWhatReplayDecidesAndDeadLettersBadRecords() async throws {
        let program = try examples()
        let (cluster, configuration) = try prepare(partitions: 4)
        let start = ISO8601.parse("2026-03-01T00:00:00Z")!
        var lines = PopulationGenerator(customers: 60, events: 1_500, start: start, days: 40, seed: 7).records()
        // A last event per customer moves every partition's stream time past all timers.
        lines += (0..<60).map { #"{"type":"identify","userId":"customer-\#($0)","messageId":"end-\#($0)","timestamp":"2026-06-01T00:00:00Z"}"# }
        let bad = [
            #"{"type":"track","userId":"customer-1","messageId":"bad-1","timestamp":"yesterday","event":"X"}"#,
            #"not json at all"#,
        ]
        try produce(Array(lines.prefix(800)) + bad + Array(lines.dropFirst(800)), to: cluster)

        let processor = StreamProcessor(configuration: configuration, program: program)
        let running = Task { try await processor.run() }
        let total = lines.count + bad.count
        #expect(try await waitUntil { processor.statistics.recordsIn == total && processor.statistics.transactionsCommitted > 0 })
        try await Task.sleep(for: .milliseconds(500))
        processor.stop()
        try await running.value

        let statistics = processor.statistics
        #expect(statistics.recordsIn == statistics.processed + statistics.deadLettered)
        #expect(statistics.deadLettered == 2)

        var replay = StreamEngine(program: program)
        var expected: [Output] = []
        for event in ReplayInput(lines: lines.map { Substring($0) }).events { expected += replay.process(event) }

        var actual: [String: String] = [:]
        for topic in configuration.topics.all where topic != configuration.topics.changelog && topic != configuration.topics.deadLetter {
            for record in try readAll(topic, from: cluster) {
                let id = try #require(record.header("upshift_decision_id")?.value).map { Character(Unicode.Scalar($0)) }
                actual[String(id)] = String(decoding: record.value ?? [], as: UTF8.self)
            }
        }
        let replayed = Dictionary(expected.map { ($0.decisionID, $0.jsonLine) }, uniquingKeysWith: { first, _ in first })
        #expect(actual.count == replayed.count)
        #expect(Set(actual.keys) == Set(replayed.keys))
        #expect(actual == replayed)

        let deadLetters = try readAll(configuration.topics.deadLetter, from: cluster)
        #expect(deadLetters.map { String(decoding: $0.value ?? [], as: UTF8.self) } == bad)
        #expect(deadLetters.map { String(decoding: $0.header("upshift_dlq_reason")?.value ?? [], as: UTF8.self) } == [
            "not an ISO-8601 date-time: \"yesterday\"", "invalid JSON at byte 0: invalid literal",
        ])
        #expect(deadLetters.map { String(decoding: $0.header("upshift_dlq_topic")?.value ?? [], as: UTF8.self) } == ["events", "events"])
    }
}
