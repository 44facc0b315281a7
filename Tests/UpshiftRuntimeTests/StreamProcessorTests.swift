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
    kafka.heartbeatInterval = .milliseconds(500)
    var configuration = RuntimeConfiguration(applicationID: "upshift-test", instanceID: "instance-1", kafka: kafka, inputTopics: ["events"])
    configuration.clock = .streamTime
    try cluster.createTopics(for: configuration, inputPartitions: partitions)
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

/// Decision id to output JSON, from every output topic (an aborted duplicate collapses onto its id).
private func decisions(in cluster: EmbeddedKafkaCluster, _ configuration: RuntimeConfiguration) throws -> [String: String] {
    var decisions: [String: String] = [:]
    for topic in configuration.topics.all where topic != configuration.topics.changelog && topic != configuration.topics.deadLetter {
        for record in try readAll(topic, from: cluster) {
            let id = String(decoding: record.header("upshift_decision_id")?.value ?? [], as: UTF8.self)
            decisions[id] = String(decoding: record.value ?? [], as: UTF8.self)
        }
    }
    return decisions
}

private func replayed(_ lines: [String], _ program: Program) -> [String: String] {
    var replay = StreamEngine(program: program)
    var outputs: [Output] = []
    for event in ReplayInput(lines: lines.map { Substring($0) }).events { outputs += replay.process(event) }
    return Dictionary(outputs.map { ($0.decisionID, $0.jsonLine) }, uniquingKeysWith: { first, _ in first })
}

/// Runs a processor until it has read `records` records, then stops it cleanly.
private func runUntil(read records: Int, _ configuration: RuntimeConfiguration, _ program: Program) async throws -> StreamProcessor.Statistics {
    let processor = StreamProcessor(configuration: configuration, program: program)
    let running = Task { try await processor.run() }
    let done = try await waitUntil { processor.statistics.recordsIn >= records && processor.statistics.transactionsCommitted > 0 }
    try await Task.sleep(for: .milliseconds(300))
    processor.stop()
    try await running.value
    #expect(done, "read \(processor.statistics.recordsIn) of \(records)")
    return processor.statistics
}

@Suite("Stream processor", .serialized)
struct StreamProcessorTests {
    @Test func restartRestoresStateAndResumesWhereTheLastTransactionEnded() async throws {
        let program = try examples()
        let (cluster, configuration) = try prepare(partitions: 3)
        var lines = PopulationGenerator(customers: 40, events: 1_200, start: ISO8601.parse("2026-03-01T00:00:00Z")!, days: 40, seed: 11).records()
        lines += (0..<40).map { #"{"type":"identify","userId":"customer-\#($0)","messageId":"end-\#($0)","timestamp":"2026-06-01T00:00:00Z"}"# }
        let half = lines.count / 2

        try produce(Array(lines.prefix(half)), to: cluster)
        let first = try await runUntil(read: half, configuration, program)
        #expect(first.recordsIn == half)

        try produce(Array(lines.dropFirst(half)), to: cluster)
        let second = try await runUntil(read: lines.count - half, configuration, program)
        #expect(second.recordsIn == lines.count - half, "the second run read only what the first had not committed")
        #expect(second.restoredCustomers == 40)
        #expect(try decisions(in: cluster, configuration) == replayed(lines, program))
    }

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

        let actual = try decisions(in: cluster, configuration)
        let expected = replayed(lines, program)
        #expect(actual.count == expected.count)
        #expect(actual == expected)

        let deadLetters = try readAll(configuration.topics.deadLetter, from: cluster)
        #expect(deadLetters.map { String(decoding: $0.value ?? [], as: UTF8.self) } == bad)
        #expect(deadLetters.map { String(decoding: $0.header("upshift_dlq_reason")?.value ?? [], as: UTF8.self) } == [
            "not an ISO-8601 date-time: \"yesterday\"", "invalid JSON at byte 0: invalid literal",
        ])
        #expect(deadLetters.map { String(decoding: $0.header("upshift_dlq_topic")?.value ?? [], as: UTF8.self) } == ["events", "events"])
    }
}

@Suite("Abort and rewind", .serialized)
struct AbortTests {
    @Test(arguments: [KafkaRequest.produce, .addPartitionsToTransaction, .transactionOffsetCommit])
    func injectedAbortableErrorsRewindAndLoseNothing(request: KafkaRequest) async throws {
        let program = try examples()
        let (cluster, configuration) = try prepare(partitions: 2)
        var lines = PopulationGenerator(customers: 30, events: 2_000, start: ISO8601.parse("2026-03-01T00:00:00Z")!, days: 40, seed: 5).records()
        lines += (0..<30).map { #"{"type":"identify","userId":"customer-\#($0)","messageId":"end-\#($0)","timestamp":"2026-06-01T00:00:00Z"}"# }
        try produce(lines, to: cluster)

        // The broker refuses the first few requests of this kind the processor makes.
        try cluster.failNextRequests(request, with: Array(repeating: .topicAuthorizationFailed, count: 3))
        let processor = StreamProcessor(configuration: configuration, program: program)
        let running = Task { try await processor.run() }
        // Records read again after an abort count again: wait for the committed offsets instead.
        #expect(try await waitUntil {
            processor.statistics.transactionsAborted > 0 && processor.statistics.committedOffsets == lines.count
        })
        try await Task.sleep(for: .milliseconds(500))
        processor.stop()
        try await running.value

        #expect(processor.statistics.transactionsAborted > 0)
        let actual = try decisions(in: cluster, configuration)
        let expected = replayed(lines, program)
        #expect(Set(expected.keys).subtracting(actual.keys).isEmpty, "lost decisions")
        #expect(Set(actual.keys).subtracting(expected.keys).isEmpty, "extra decisions")
        #expect(actual == expected)
    }
}
