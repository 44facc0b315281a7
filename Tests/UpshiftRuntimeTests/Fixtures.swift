import Foundation
import Kafka
import Logging
import Synchronization
import Testing
import UpshiftCore
@testable import UpshiftRuntime

let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

let workflowNames = ["shared.yaml", "saas-quota.yaml", "ecommerce-warranty.yaml", "subscription-renewal.yaml"]

/// The shipped example workflows.
func examples() throws -> Program {
    let files = try workflowNames.map { name in
        (name: name, text: try String(contentsOf: repository.appendingPathComponent("deploy/workflows/\(name)"), encoding: .utf8))
    }
    return try ProgramLoader.load(files)
}

/// A cluster with the input, output and changelog topics of one test.
func prepare(partitions: Int) throws -> (EmbeddedKafkaCluster, RuntimeConfiguration) {
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
func produce(_ lines: [String], to cluster: EmbeddedKafkaCluster) throws {
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
func readAll(_ topic: String, from cluster: EmbeddedKafkaCluster) throws -> [ConsumerRecord] {
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

func waitUntil(timeout: Duration = .seconds(60), _ condition: () -> Bool) async throws -> Bool {
    let end = ContinuousClock.now + timeout
    while !condition() {
        if ContinuousClock.now > end { return false }
        try await Task.sleep(for: .milliseconds(100))
    }
    return true
}

/// Decision id to output JSON, from every output topic (an aborted duplicate collapses onto its id).
func decisions(in cluster: EmbeddedKafkaCluster, _ configuration: RuntimeConfiguration) throws -> [String: String] {
    var decisions: [String: String] = [:]
    for topic in configuration.topics.all where topic != configuration.topics.changelog && topic != configuration.topics.deadLetter {
        for record in try readAll(topic, from: cluster) {
            let id = String(decoding: record.header("upshift_decision_id")?.value ?? [], as: UTF8.self)
            decisions[id] = String(decoding: record.value ?? [], as: UTF8.self)
        }
    }
    return decisions
}

func replayed(_ lines: [String], _ program: Program) -> [String: String] {
    var replay = StreamEngine(program: program)
    var outputs: [Output] = []
    for event in ReplayInput(lines: lines.map { Substring($0) }).events { outputs += replay.process(event) }
    return Dictionary(outputs.map { ($0.decisionID, $0.jsonLine) }, uniquingKeysWith: { first, _ in first })
}

/// Runs a processor until it has read `records` records, then stops it cleanly.
func runUntil(read records: Int, _ configuration: RuntimeConfiguration, _ program: Program) async throws -> StreamProcessor.Statistics {
    let processor = StreamProcessor(configuration: configuration, program: program)
    let running = Task { try await processor.run() }
    let done = try await waitUntil { processor.statistics.recordsIn >= records && processor.statistics.transactionsCommitted > 0 }
    try await Task.sleep(for: .milliseconds(300))
    processor.stop()
    try await running.value
    #expect(done, "read \(processor.statistics.recordsIn) of \(records)")
    return processor.statistics
}


/// Every partition's state and last commit, as a restarting processor would rebuild them.
func restoreAll(_ cluster: EmbeddedKafkaCluster, partitions: Int, program: Program) throws -> [Changelog.Restorer] {
    try (0..<Int32(partitions)).map { partition in
        var settings = KafkaConfiguration(bootstrapServers: cluster.bootstrapServers)
        settings.groupID = "crash-test-restore"
        settings.isolationLevel = .readCommitted
        let reader = try KafkaConsumer(configuration: settings)
        var restorer = Changelog.Restorer(program: program)
        try reader.readToEnd(TopicPartition(OutputTopics().changelog, partition), maxRecords: 10_000) { records in
            records.forEach { restorer.read($0) }
        }
        restorer.finish()
        return restorer
    }
}


/// Collects the lines a logger writes.
final class LogLines: Sendable {
    private let lines = Mutex<[String]>([])
    private let format: LineLogHandler.Format
    private let clock: @Sendable () -> Date

    init(format: LineLogHandler.Format = .text, clock: @escaping @Sendable () -> Date = Date.init) {
        self.format = format
        self.clock = clock
    }

    var logger: Logger {
        Logger(label: "upshift") { label in
            LineLogHandler(label: label, format: self.format, clock: self.clock, write: { line in self.lines.withLock { $0.append(line) } })
        }
    }

    var all: [String] { lines.withLock { $0 } }

    /// Each line's message, without its metadata.
    var messages: [String] {
        lines.withLock { $0 }.map { String($0.prefix { $0 != "(" }).trimmingCharacters(in: .whitespaces) }
    }
}

/// Runs `schemas/validate.py` (Python's `jsonschema`, installed by `make test`) and returns its
/// exit status and what it printed.
func schemaCheck(_ arguments: [String]) throws -> (status: Int32, output: String) {
    try run(URL(fileURLWithPath: "/usr/bin/env"), ["python3", repository.appendingPathComponent("schemas/validate.py").path] + arguments)
}

/// Runs a program to its end; returns its exit status and what it printed (standard error too,
/// unless `errors` is false).
func run(_ executable: URL, _ arguments: [String], errors: Bool = true) throws -> (status: Int32, output: String) {
    let process = Process()
    process.executableURL = executable
    process.arguments = arguments
    let pipe = Pipe()
    process.standardOutput = pipe
    process.standardError = errors ? pipe : FileHandle.nullDevice
    try process.run()
    let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    process.waitUntilExit()
    return (process.terminationStatus, output)
}

/// Checks JSON documents, one per line, against a schema of `schemas/`.
func schemaCheck(_ schema: String, _ documents: [String]) throws -> (status: Int32, output: String) {
    let file = FileManager.default.temporaryDirectory.appendingPathComponent("upshift-\(getpid())-\(UUID().uuidString).jsonl")
    try documents.joined(separator: "\n").write(to: file, atomically: true, encoding: .utf8)
    defer { try? FileManager.default.removeItem(at: file) }
    let result = try schemaCheck([repository.appendingPathComponent("schemas/\(schema)").path, file.path])
    return (result.status, result.output.replacingOccurrences(of: file.path, with: "documents"))
}

/// The schema of each output topic's values, by output kind.
let outputSchemas: [Output.Kind: String] = [
    .offer: "offer.schema.json", .task: "task.schema.json", .suppression: "suppression.schema.json",
    .holdout: "holdout.schema.json", .exit: "outcome.schema.json", .conversion: "outcome.schema.json", .guardrail: "outcome.schema.json",
    .pause: "pause.schema.json",
]
