import Foundation
import Kafka
import Testing
import UpshiftCore
@testable import UpshiftRuntime

/// `upshift run` as child processes of the test, against one embedded cluster with the example
/// workflows in stream time; each instance has its configuration and JSON log in a temporary directory.
final class ChildProcessors {
    let cluster: EmbeddedKafkaCluster
    let partitions: Int
    let program: Program
    let application: String
    private let directory: URL
    private let watcher: KafkaConsumer

    init(application: String, partitions: Int) throws {
        self.application = application
        self.partitions = partitions
        program = try examples()
        cluster = try EmbeddedKafkaCluster(brokers: 1)
        let kafka = KafkaConfiguration(bootstrapServers: cluster.bootstrapServers)
        try cluster.createTopics(
            for: RuntimeConfiguration(applicationID: application, instanceID: "any", kafka: kafka, inputTopics: ["events"]),
            inputPartitions: partitions)
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("upshift-\(application)-\(getpid())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        var settings = kafka
        settings.groupID = "\(application)-watch"
        watcher = try KafkaConsumer(configuration: settings)
    }

    deinit { try? FileManager.default.removeItem(at: directory) }

    /// Produces the lines keyed by customer id.
    func produce(_ lines: [String]) throws {
        let producer = try KafkaProducer(configuration: KafkaConfiguration(bootstrapServers: cluster.bootstrapServers))
        let decoder = EventDecoder()
        for line in lines {
            try producer.send(ProducerRecord(topic: "events", key: Array(try decoder.decode(line).customerID.utf8), value: Array(line.utf8)))
        }
        #expect(try producer.flush(timeout: .seconds(30)).allSatisfy { (try? $0.result.get()) != nil })
    }

    /// Starts `upshift run` as this instance; its log lines are appended to the instance's log.
    func start(_ instance: String) throws -> Process {
        let config = directory.appendingPathComponent("\(instance).yaml")
        try """
            application_id: \(application)
            instance_id: \(instance)
            bootstrap_servers: \(cluster.bootstrapServers)
            input_topics: [events]
            workflows: [\(workflowNames.map { repository.appendingPathComponent("deploy/workflows/\($0)").path }.joined(separator: ", "))]
            clock: stream
            commit_interval: 100ms
            http_port: 0
            kafka: { session.timeout.ms: "6000", heartbeat.interval.ms: "500" }
            """.write(to: config, atomically: true, encoding: .utf8)
        let logURL = directory.appendingPathComponent("\(instance).log")
        if !FileManager.default.fileExists(atPath: logURL.path) { _ = FileManager.default.createFile(atPath: logURL.path, contents: nil) }
        let log = try FileHandle(forWritingTo: logURL)
        try log.seekToEnd()
        let process = Process()
        process.executableURL = try upshiftExecutable()
        process.arguments = ["run", "--config", config.path]
        process.standardError = log
        try process.run()
        return process
    }

    /// The instance's lifecycle log lines (librdkafka's own lines left out).
    func log(of instance: String) -> [JSONObject] {
        let text = (try? String(contentsOf: directory.appendingPathComponent("\(instance).log"), encoding: .utf8)) ?? ""
        return text.split(separator: "\n").compactMap { (try? JSONReader.parse(String($0)))?.object }
    }

    /// The last lines of the instance's log, for a failure message.
    func tail(of instance: String) -> String {
        let text = (try? String(contentsOf: directory.appendingPathComponent("\(instance).log"), encoding: .utf8)) ?? ""
        return text.split(separator: "\n").suffix(15).joined(separator: "\n")
    }

    /// Grows with every commit: a cheap sign of progress.
    func changelogEnd() throws -> Int64 {
        try (0..<Int32(partitions)).reduce(Int64(0)) { $0 + (try watcher.watermarks(of: TopicPartition(OutputTopics().changelog, $1)).high) }
    }

    /// Every partition's state and last commit, as a restarting processor would rebuild them.
    func restored() throws -> [Changelog.Restorer] {
        try restoreAll(cluster, partitions: partitions, program: program)
    }

    /// The sum of the input offsets the changelog says are committed.
    func committedOffsets() throws -> Int64 {
        try restored().reduce(0) { $0 + ($1.lastCommit?.offsets.values.reduce(0, +) ?? 0) }
    }

    /// Waits until the input offsets committed reach `count`.
    func waitForCommitted(_ count: Int, timeout: Duration = .seconds(90)) async throws -> Bool {
        let deadline = ContinuousClock.now + timeout
        while try committedOffsets() < count {
            guard ContinuousClock.now < deadline else { return false }
            try await Task.sleep(for: .milliseconds(300))
        }
        return true
    }

    /// Asks a child to stop with SIGTERM and expects a clean exit within `timeout`.
    func stop(_ process: Process, _ instance: String, within timeout: Duration = .seconds(30)) async throws {
        process.terminate()
        let exited = try await exits(process, within: timeout)
        #expect(exited && process.terminationStatus == 0, "SIGTERM should stop \(instance) cleanly; its log ends:\n\(tail(of: instance))")
    }

    /// What replay decides and the states it ends with, over the same lines.
    func replay(_ lines: [String]) -> (decisions: [String: String], states: [String: CustomerState]) {
        var replay = StreamEngine(program: program)
        var decisions: [String: String] = [:]
        for event in ReplayInput(lines: lines.map { Substring($0) }).events {
            for output in replay.process(event) { decisions[output.decisionID] = output.jsonLine }
        }
        return (decisions, replay.states)
    }

    /// Every restored partition's customers.
    func restoredStates() throws -> [String: CustomerState] {
        try restored().reduce(into: [:]) { states, restorer in states.merge(restorer.states) { first, _ in first } }
    }

    /// What differs between restored and expected states, with each changelog partition's
    /// watermarks: a failure message that points at the customers and fields to look at.
    func differences(_ restored: [String: CustomerState], _ expected: [String: CustomerState]) -> String {
        let ids = Set(restored.keys).union(expected.keys).filter { restored[$0] != expected[$0] }.sorted()
        let watermarks = (0..<Int32(partitions)).map { partition in
            let marks = try? watcher.watermarks(of: TopicPartition(OutputTopics().changelog, partition))
            return "changelog[\(partition)] " + (marks.map { "\($0.low)..<\($0.high)" } ?? "watermarks unknown")
        }
        var report = ["\(ids.count) customers differ: \(ids.prefix(10).joined(separator: ", "))"] + watermarks
        for id in ids.prefix(3) {
            report.append("\(id), restored then expected, where they differ:")
            report += zip(fields(restored[id]), fields(expected[id])).filter { $0 != $1 }.map { "- \($0)\n+ \($1)" }
        }
        return report.joined(separator: "\n")
    }

    /// A state's fields, one line each. A dump of the whole state is mostly its block of cells,
    /// where one record more or less shifts every line after it and hides the rest.
    private func fields(_ state: CustomerState?) -> [String] {
        guard let state else { return ["no state"] }
        return [
            "latest event time \(String(describing: state.latestEventTime))", "run \(String(describing: state.run))",
            "late events \(state.lateEvents)", "aliases \(state.aliases)", "precedents \(state.precedents.sorted { $0.key < $1.key })",
            "account \(String(describing: state.accountID)) \(String(decoding: state.accountTraits.text, as: UTF8.self))",
            "workflows \(state.workflows)", "metrics \(state.metrics)", "suppressions \(state.suppressions)",
            "traits \(String(decoding: state.traits.text, as: UTF8.self))",
        ]
    }

    /// Decision id to output JSON from every output topic (aborted duplicates collapse onto their id).
    func decisions() throws -> [String: String] {
        var settings = KafkaConfiguration(bootstrapServers: cluster.bootstrapServers)
        settings.groupID = "\(application)-reader"
        settings.isolationLevel = .readCommitted
        let reader = try KafkaConsumer(configuration: settings)
        let outputs = OutputTopics()
        let topics = [outputs.email, outputs.inApp, outputs.sms, outputs.push, outputs.customerSuccess, outputs.suppressions, outputs.holdouts, outputs.outcomes]
        try reader.assign(topics.map { TopicPartitionOffset($0, 0, .beginning) })
        var decided: [String: String] = [:]
        while true {
            let records = try reader.poll(maxRecords: 10_000, timeout: .seconds(2))
            if records.isEmpty { break }
            for record in records {
                decided[String(decoding: record.header("upshift_decision_id")?.value ?? [], as: UTF8.self)] = String(decoding: record.value ?? [], as: UTF8.self)
            }
        }
        return decided
    }
}

/// The `upshift` executable beside the test bundle (`swift build --build-tests` builds both).
func upshiftExecutable() throws -> URL {
    var directory = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
    while directory.path != "/" {
        let candidate = directory.appendingPathComponent("upshift")
        if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
        directory = directory.deletingLastPathComponent()
    }
    throw CocoaError(.fileNoSuchFile, userInfo: [NSFilePathErrorKey: "upshift next to \(CommandLine.arguments[0])"])
}

/// Waits for a child to exit; kills it if it has not by the deadline.
private func exits(_ process: Process, within timeout: Duration) async throws -> Bool {
    let deadline = ContinuousClock.now + timeout
    while process.isRunning {
        guard ContinuousClock.now < deadline else {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            return false
        }
        try await Task.sleep(for: .milliseconds(100))
    }
    return true
}
