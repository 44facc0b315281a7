import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Kafka
import Prometheus
import Synchronization
import Testing
import UpshiftCore
@testable import UpshiftRuntime

/// GETs a path of the health server on loopback.
private func get(_ path: String, port: Int) async throws -> (status: Int, body: String) {
    let (data, response) = try await URLSession.shared.data(from: URL(string: "http://127.0.0.1:\(port)\(path)")!)
    return ((response as? HTTPURLResponse)?.statusCode ?? 0, String(decoding: data, as: UTF8.self))
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

    /// Most events decide nothing: a record read while the previous commit is still on its way,
    /// with no output to hold for the next transaction, must still get a transaction of its own,
    /// even when it is the partition's last for a while.
    @Test func aRecordReadWhileACommitIsInFlightIsCommittedAfterIt() async throws {
        let program = try examples()
        let (cluster, configuration) = try prepare(partitions: 1)
        let producer = try KafkaProducer(configuration: KafkaConfiguration(bootstrapServers: cluster.bootstrapServers))
        func send(_ number: Int) throws {
            let line = #"{"type":"identify","userId":"quiet-customer","messageId":"m-\#(number)","timestamp":"2026-03-0\#(number)T00:00:00Z"}"#
            try producer.send(ProducerRecord(topic: "events", key: Array("quiet-customer".utf8), value: Array(line.utf8)))
            #expect(try producer.flush(timeout: .seconds(30)).allSatisfy { (try? $0.result.get()) != nil })
        }
        let processor = StreamProcessor(configuration: configuration, program: program)
        let running = Task { try await processor.run() }
        try send(1)
        #expect(try await waitUntil { processor.statistics.committedOffsets == 1 })

        // Each broker response now takes a second: a commit (five round trips) stays in flight
        // for about 5 s, while a record is produced and fetched in 2 to 3 s. (Half a second left
        // too little room when the other suites loaded both cores: the commit once landed first.)
        try cluster.setResponseDelay(.seconds(1), broker: 1)
        try send(2)
        #expect(try await waitUntil { processor.statistics.recordsIn == 2 })
        let committedBeforeTheThird = processor.statistics.transactionsCommitted
        try send(3)
        #expect(try await waitUntil { processor.statistics.recordsIn == 3 })
        #expect(processor.statistics.transactionsCommitted == committedBeforeTheThird, "the third record came while the second's commit was in flight")

        #expect(try await waitUntil(timeout: .seconds(30)) { processor.statistics.committedOffsets == 3 })
        #expect(processor.statistics.outputs == 0)
        try cluster.setResponseDelay(.zero, broker: 1)
        processor.stop()
        try await running.value
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

        let registry = PrometheusCollectorRegistry()
        let processor = StreamProcessor(configuration: configuration, program: program, metrics: PrometheusMetricsFactory(registry: registry))
        let server = try await HealthServer(host: "127.0.0.1", port: 0, metrics: { registry.emitToBuffer() }, isReady: { processor.statistics.isReady })
        #expect(try await get("/readyz", port: server.port).status == 503)
        let running = Task { try await processor.run() }
        let total = lines.count + bad.count
        #expect(try await waitUntil { processor.statistics.recordsIn == total && processor.statistics.transactionsCommitted > 0 })
        try await Task.sleep(for: .milliseconds(500))
        #expect(try await get("/readyz", port: server.port).status == 200)
        #expect(try await get("/healthz", port: server.port).status == 200)
        let metrics = try await get("/metrics", port: server.port).body
        processor.stop()
        try await running.value
        await server.stop()

        let statistics = processor.statistics
        #expect(statistics.recordsIn == statistics.processed + statistics.deadLettered)
        #expect(statistics.deadLettered == 2)

        let actual = try decisions(in: cluster, configuration)
        let expected = replayed(lines, program)
        #expect(actual.count == expected.count)
        #expect(actual == expected)

        // Every record on an output topic matches its topic's schema.
        for (kind, schema) in outputSchemas {
            let values = actual.values.filter { $0.contains(#""type":"\#(kind.rawValue)""#) }
            let result = try schemaCheck(schema, Array(values))
            #expect(result.status == 0, "\(schema): \(result.output)")
        }

        // Prometheus text that a Prometheus parser reads, with the counts of this run.
        let scraped = FileManager.default.temporaryDirectory.appendingPathComponent("upshift-metrics-\(getpid()).txt")
        try metrics.write(to: scraped, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: scraped) }
        let parsed = try schemaCheck(["--prometheus", scraped.path])
        #expect(parsed.status == 0, "\(parsed.output)")
        let tracks = lines.count { $0.contains(#""type":"track""#) }
        let identifies = lines.count { $0.contains(#""type":"identify""#) }
        let samples = Set(metrics.split(separator: "\n").map(String.init))
        #expect(samples.contains(#"upshift_events_consumed_total{topic="events",type="track"} \#(tracks)"#), "\(metrics)")
        #expect(samples.contains(#"upshift_events_consumed_total{topic="events",type="identify"} \#(identifies)"#))
        #expect(samples.contains(#"upshift_dead_letters_total{reason="bad_time",field="timestamp"} 1"#), "\(metrics)")
        #expect(samples.contains(#"upshift_dead_letters_total{reason="malformed",field="record"} 1"#))
        let offers = expected.values.count { $0.hasPrefix(#"{"type":"offer""#) || $0.hasPrefix(#"{"type":"task""#) }
        let decided = metrics.split(separator: "\n").filter { $0.hasPrefix("upshift_decisions_total{") }
            .compactMap { $0.split(separator: " ").last.flatMap { Int($0) } }.reduce(0, +)
        #expect(decided == offers)

        let deadLetters = try readAll(configuration.topics.deadLetter, from: cluster)
        #expect(deadLetters.map { String(decoding: $0.value ?? [], as: UTF8.self) } == bad)
        #expect(deadLetters.map { String(decoding: $0.header("upshift_dlq_reason")?.value ?? [], as: UTF8.self) } == [
            "not an ISO-8601 date-time: \"yesterday\"", "invalid JSON at byte 0: invalid literal",
        ])
        let headers = deadLetters.map { record in
            var object = JSONObject()
            for header in record.headers where header.key.hasPrefix("upshift_dlq_") {
                object[header.key] = .string(String(decoding: header.value ?? [], as: UTF8.self))
            }
            var writer = JSONWriter()
            writer.write(.object(object))
            return writer.text
        }
        let deadLetterCheck = try schemaCheck("dead-letter.schema.json", headers)
        #expect(deadLetterCheck.status == 0, "\(deadLetterCheck.output)")
        #expect(deadLetters.map { String(decoding: $0.header("upshift_dlq_topic")?.value ?? [], as: UTF8.self) } == ["events", "events"])
        #expect(deadLetters.map { String(decoding: $0.header("upshift_dlq_problem")?.value ?? [], as: UTF8.self) } == ["bad_time", "malformed"])
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
