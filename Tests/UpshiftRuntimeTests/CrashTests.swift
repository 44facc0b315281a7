import Foundation
import Kafka
import Testing
import UpshiftCore
@testable import UpshiftRuntime

@Suite("Crash recovery", .serialized)
struct CrashTests {
    @Test func killedProcessorsLoseAndRepeatNothing() async throws {
        let partitions = 3
        let program = try examples()
        let cluster = try EmbeddedKafkaCluster(brokers: 1)
        let kafka = KafkaConfiguration(bootstrapServers: cluster.bootstrapServers)
        try cluster.createTopics(
            for: RuntimeConfiguration(applicationID: "crash-test", instanceID: "crash-1", kafka: kafka, inputTopics: ["events"]),
            inputPartitions: partitions)

        // About 3.5 MB per partition: under the embedded broker's retention, long enough to kill mid-stream.
        var lines = PopulationGenerator(customers: 80, events: 45_000, start: ISO8601.parse("2026-03-01T00:00:00Z")!, days: 40, seed: 23).records()
        lines += (0..<80).map { #"{"type":"identify","userId":"customer-\#($0)","messageId":"end-\#($0)","timestamp":"2026-06-01T00:00:00Z"}"# }
        let producer = try KafkaProducer(configuration: KafkaConfiguration(bootstrapServers: cluster.bootstrapServers))
        let decoder = EventDecoder()
        for line in lines {
            try producer.send(ProducerRecord(topic: "events", key: Array(try decoder.decode(line).customerID.utf8), value: Array(line.utf8)))
        }
        _ = try producer.flush(timeout: .seconds(30))

        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("upshift-crash-\(getpid())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let config = directory.appendingPathComponent("upshift.yaml")
        try """
            application_id: crash-test
            instance_id: crash-1
            bootstrap_servers: \(cluster.bootstrapServers)
            input_topics: [events]
            workflows: [\(workflowNames.map { repository.appendingPathComponent("deploy/workflows/\($0)").path }.joined(separator: ", "))]
            clock: stream
            commit_interval: 100ms
            kafka: { session.timeout.ms: "6000", heartbeat.interval.ms: "500" }
            """.write(to: config, atomically: true, encoding: .utf8)

        // Cheap progress: the changelog grows with every commit.
        var watchSettings = KafkaConfiguration(bootstrapServers: cluster.bootstrapServers)
        watchSettings.groupID = "crash-test-watch"
        let watcher = try KafkaConsumer(configuration: watchSettings)
        func changelogEnd() throws -> Int64 {
            try (0..<Int32(partitions)).reduce(Int64(0)) { $0 + (try watcher.watermarks(of: TopicPartition(OutputTopics().changelog, $1)).high) }
        }

        func committedOffsets() throws -> Int64 {
            try restoreAll(cluster, partitions: partitions, program: program).reduce(0) { $0 + ($1.lastCommit?.offsets.values.reduce(0, +) ?? 0) }
        }

        let logURL = directory.appendingPathComponent("processor.log")
        _ = FileManager.default.createFile(atPath: logURL.path, contents: nil)
        let log = try FileHandle(forWritingTo: logURL)

        // Killed four times, as soon as each run has committed something, then left to finish.
        var kills = 0
        var progress: [Int64] = []
        while true {
            let process = Process()
            process.executableURL = try upshiftExecutable()
            process.arguments = ["run", "--config", config.path]
            process.standardError = log
            let before = try changelogEnd()
            try process.run()
            if kills < 4 {
                // Killed once it has committed something more, at a different moment each time.
                let deadline = ContinuousClock.now + .seconds(60)
                while (progress.last ?? 0) < lines.count, try changelogEnd() <= before, ContinuousClock.now < deadline {
                    try await Task.sleep(for: .milliseconds(20))
                }
                try await Task.sleep(for: .milliseconds(Int64(kills * 30)))
                kill(process.processIdentifier, SIGKILL)
                process.waitUntilExit()
                kills += 1
                progress.append(try committedOffsets())
                continue
            }
            let deadline = ContinuousClock.now + .seconds(90)
            while try committedOffsets() < lines.count, ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(300))
            }
            process.terminate()
            let exited = try await exits(process, within: .seconds(30))
            let tail = (try? String(contentsOf: logURL, encoding: .utf8))?.split(separator: "\n").suffix(15).joined(separator: "\n") ?? ""
            #expect(exited && process.terminationStatus == 0, "SIGTERM should stop the processor cleanly; its log ends:\n\(tail)")
            break
        }
        #expect(progress == progress.sorted(), "committed offsets only move forward: \(progress)")
        // A fast run can finish before the test sees its commit; most kills must still land mid-stream.
        #expect(progress.first { $0 >= lines.count } == nil || progress.count { $0 < lines.count } >= 2, "kills mid-stream: \(progress) of \(lines.count)")
        #expect(progress.allSatisfy { $0 > 0 })

        var replay = StreamEngine(program: program)
        var expected: [String: String] = [:]
        for event in ReplayInput(lines: lines.map { Substring($0) }).events {
            for output in replay.process(event) { expected[output.decisionID] = output.jsonLine }
        }

        let restored = try restoreAll(cluster, partitions: partitions, program: program)
        #expect(restored.reduce(0) { $0 + ($1.lastCommit?.offsets.values.reduce(0, +) ?? 0) } == Int64(lines.count))
        var states: [String: CustomerState] = [:]
        for restorer in restored { states.merge(restorer.states) { first, _ in first } }
        #expect(states.count == replay.states.count)
        #expect(states == replay.states)

        // The broker shows aborted transactions' records too, so readers dedupe by decision id.
        var decided: [String: String] = [:]
        var settings = KafkaConfiguration(bootstrapServers: cluster.bootstrapServers)
        settings.groupID = "crash-test-reader"
        settings.isolationLevel = .readCommitted
        let reader = try KafkaConsumer(configuration: settings)
        let outputs = OutputTopics()
        let topics = [outputs.email, outputs.inApp, outputs.sms, outputs.push, outputs.customerSuccess, outputs.suppressions, outputs.holdouts, outputs.outcomes]
        try reader.assign(topics.map { TopicPartitionOffset($0, 0, .beginning) })
        while true {
            let records = try reader.poll(maxRecords: 10_000, timeout: .seconds(2))
            if records.isEmpty { break }
            for record in records {
                decided[String(decoding: record.header("upshift_decision_id")?.value ?? [], as: UTF8.self)] = String(decoding: record.value ?? [], as: UTF8.self)
            }
        }
        #expect(Set(decided.keys) == Set(expected.keys), "none lost, none extra")
        #expect(decided == expected)
    }
}
