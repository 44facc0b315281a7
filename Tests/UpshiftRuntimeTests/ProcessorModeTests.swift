import Foundation
import Kafka
import Testing
import UpshiftCore
@testable import UpshiftRuntime

/// A processor over `program` on a fresh cluster with one input partition.
private func singlePartition(_ program: String, adjust: (inout RuntimeConfiguration) -> Void) throws -> (EmbeddedKafkaCluster, RuntimeConfiguration, Program) {
    var (cluster, configuration) = try prepare(partitions: 1)
    adjust(&configuration)
    return (cluster, configuration, try ProgramLoader.load([(name: "test.yaml", text: program)]))
}

@Suite("Clocks and guarantees", .serialized)
struct ProcessorModeTests {
    @Test func wallClockFiresATimerForACustomerWhoSendsNothingMore() async throws {
        let (cluster, configuration, program) = try singlePartition(
            """
            workflows:
              - id: welcome-upgrade
                version: 1
                trigger: { after: "Signed Up", by: 2s }
                steps:
                  - send: { channel: email, template: upgrade-tips }
            """
        ) { $0.clock = .wallClock }
        let now = ISO8601.format(Timestamp(milliseconds: Int64(Date().timeIntervalSince1970 * 1000)))
        let line = #"{"type":"track","userId":"customer-1","messageId":"m-1","event":"Signed Up","timestamp":"\#(now)"}"#
        try produce([line], to: cluster)

        // Stream time would wait for a later event; the wall clock fires the offer on its own.
        var replay = StreamEngine(program: program)
        let expected = ReplayInput(lines: [Substring(line)]).events.flatMap { replay.process($0) } + replay.finish()
        #expect(expected.map(\.kind) == [.offer, .exit])

        let processor = StreamProcessor(configuration: configuration, program: program)
        let running = Task { try await processor.run() }
        #expect(try await waitUntil(timeout: .seconds(30)) { processor.statistics.outputs == expected.count })
        try await Task.sleep(for: .milliseconds(300))
        processor.stop()
        try await running.value

        // Decided at the timer's due time, whenever the processor noticed it.
        #expect(try decisions(in: cluster, configuration) == Dictionary(uniqueKeysWithValues: expected.map { ($0.decisionID, $0.jsonLine) }))
    }

    @Test func atLeastOnceDecidesWhatReplayDecides() async throws {
        let program = try examples()
        var (cluster, configuration) = try prepare(partitions: 2)
        configuration.guarantee = .atLeastOnce
        var lines = PopulationGenerator(customers: 30, events: 1_000, start: ISO8601.parse("2026-03-01T00:00:00Z")!, days: 40, seed: 3).records()
        lines += (0..<30).map { #"{"type":"identify","userId":"customer-\#($0)","messageId":"end-\#($0)","timestamp":"2026-06-01T00:00:00Z"}"# }
        try produce(lines, to: cluster)

        let processor = StreamProcessor(configuration: configuration, program: program)
        let running = Task { try await processor.run() }
        #expect(try await waitUntil { processor.statistics.committedOffsets == lines.count })
        processor.stop()
        try await running.value

        #expect(processor.statistics.transactionsCommitted > 0)
        #expect(try decisions(in: cluster, configuration) == replayed(lines, program))
    }

    @Test func idleCustomersExpireAndLeaveTheChangelog() async throws {
        let (cluster, configuration, program) = try singlePartition(
            """
            settings: { idle_ttl: 1d }
            metrics:
              views_7d: { count: "Page Viewed", window: 7d, bucket: 1d }
            """
        ) {
            $0.expiryInterval = .zero
        }
        func view(_ customer: String, _ day: Int) -> String {
            #"{"type":"track","userId":"\#(customer)","messageId":"\#(customer)-\#(day)","event":"Page Viewed","timestamp":"2026-03-0\#(day)T12:00:00Z"}"#
        }
        try produce([view("customer-a", 1), view("customer-b", 1), view("customer-b", 4)], to: cluster)

        let statistics = try await runUntil(read: 3, configuration, program)
        #expect(statistics.expiredCustomers == 1)
        let restored = try restoreAll(cluster, partitions: 1, program: program)
        #expect(restored.flatMap(\.states.keys) == ["customer-b"])
    }
}

@Suite("Outages and bad layouts", .serialized)
struct ResilienceTests {
    @Test func refusesToStartOnInputsThatAreNotCoPartitioned() async throws {
        var (cluster, configuration) = try prepare(partitions: 3)
        try cluster.createTopic("billing", partitions: 2)
        configuration.inputTopics = ["events", "billing"]
        let processor = StreamProcessor(configuration: configuration, program: try examples())
        await #expect(throws: ProcessorError.inputsNotCoPartitioned(partitions: ["billing": 2, "events": 3])) {
            try await processor.run()
        }
    }

    @Test func survivesABrokerOutageAndLosesNothing() async throws {
        let program = try examples()
        var (cluster, configuration) = try prepare(partitions: 2)
        // The first commit follows the first batch; the next one, 3 s later, usually falls in the outage.
        configuration.commitInterval = .seconds(3)
        var lines = PopulationGenerator(customers: 30, events: 1_500, start: ISO8601.parse("2026-03-01T00:00:00Z")!, days: 40, seed: 9).records()
        lines += (0..<30).map { #"{"type":"identify","userId":"customer-\#($0)","messageId":"end-\#($0)","timestamp":"2026-06-01T00:00:00Z"}"# }
        try produce(lines, to: cluster)

        let log = LogLines()
        let processor = StreamProcessor(configuration: configuration, program: program, logger: log.logger)
        let running = Task { try await processor.run() }
        #expect(try await waitUntil { processor.statistics.recordsIn == lines.count })
        // Down while the last records wait for their commit, for less than the session timeout.
        try cluster.setBroker(1, up: false)
        try await Task.sleep(for: .seconds(4))
        try cluster.setBroker(1, up: true)
        // On a loaded machine the last commit can land before the outage: the processor then has
        // nothing to send, and only its once-a-second probe can see the brokers back.
        #expect(try await waitUntil { processor.statistics.committedOffsets == lines.count && log.messages.contains("brokers up") })
        processor.stop()
        try await running.value

        #expect(try decisions(in: cluster, configuration) == replayed(lines, program))
        let messages = log.messages
        #expect(messages.contains("brokers down") && messages.contains("brokers up"), "\(messages)")
        #expect(messages.last == "stopped")
    }

    @Test func aStopEndsARunThatCannotReachTheBrokers() async throws {
        var (cluster, configuration) = try prepare(partitions: 1)
        configuration.shutdownTimeout = .seconds(2)
        try cluster.setBroker(1, up: false)
        let processor = StreamProcessor(configuration: configuration, program: try examples())
        let running = Task { try await processor.run() }
        try await Task.sleep(for: .seconds(1))
        let stopped = ContinuousClock.now
        processor.stop()
        await #expect(throws: KafkaError.self) { try await running.value }
        #expect(ContinuousClock.now - stopped < .seconds(12))
    }

    @Test func aStopGivesUpAtItsTimeoutWhenTheBrokersAreGone() async throws {
        var (cluster, configuration) = try prepare(partitions: 1)
        configuration.commitInterval = .seconds(60)
        configuration.shutdownTimeout = .seconds(2)
        let lines = PopulationGenerator(customers: 5, events: 100, start: ISO8601.parse("2026-03-01T00:00:00Z")!, days: 10, seed: 1).records()
        try produce(lines, to: cluster)

        let log = LogLines(format: .json)
        let processor = StreamProcessor(configuration: configuration, program: try examples(), logger: log.logger)
        let running = Task { try await processor.run() }
        #expect(try await waitUntil { processor.statistics.recordsIn == lines.count })
        try cluster.setBroker(1, up: false)
        let stopped = ContinuousClock.now
        processor.stop()
        await #expect(throws: ProcessorError.shutdownTimedOut(after: .seconds(2))) { try await running.value }
        // The timeout, plus librdkafka's own lag in giving up calls and closing clients with no broker to talk to.
        #expect(ContinuousClock.now - stopped < .seconds(12), "\(log.all.joined(separator: "\n"))")
    }
}

@Suite("Guardrail pauses in the processor", .serialized)
struct PauseTests {
    @Test func aPauseGoesToTheControlTopicAndHoldsAfterARestart() async throws {
        var (cluster, configuration) = try prepare(partitions: 1)
        configuration.clock = .streamTime
        let program = try ProgramLoader.load([(name: "promo.yaml", text: """
            guardrails:
              unsubscribed: { event: "Unsubscribed", within: 30d, pause_above: 10%, minimum_sample: 30 }
            workflows:
              - id: promo
                trigger: { event: "Signed Up", count: 1, within: 1d }
                variants: { calm: 50%, loud: 50% }
                steps: [ { send: { channel: email, template: hello } } ]
            """)])
        let engine = DecisionEngine(program: program)
        func signups(_ range: Range<Int>) -> [String] {
            range.flatMap { index -> [String] in
                let time = ISO8601.format(ISO8601.parse("2026-03-01T00:00:00Z")! + .minutes(Int64(index)))
                let signup = #"{"type":"track","userId":"c-\#(index)","messageId":"s-\#(index)","event":"Signed Up","timestamp":"\#(time)"}"#
                let event = try! EventDecoder().decode(signup)
                var probe = engine.newState(for: event.customerID)
                _ = engine.process(event, at: event.timestamp, state: &probe)
                guard probe.assignment(of: 0)?.variant == "loud", index % 3 == 0 else { return [signup] }
                return [signup, #"{"type":"track","userId":"c-\#(index)","messageId":"u-\#(index)","event":"Unsubscribed","timestamp":"\#(time)","properties":{"channel":"sms"}}"#]
            }
        }
        let first = signups(0..<200)
        try produce(first, to: cluster)
        _ = try await runUntil(read: first.count, configuration, program)
        let control = try readAll(configuration.topics.control, from: cluster)
        #expect(control.map { String(decoding: $0.key ?? [], as: UTF8.self) } == ["pause/promo/1/loud"])

        // A new run reads the pause back before it processes anything: no loud offer at all.
        let later = signups(1_000..<1_100)
        try produce(later, to: cluster)
        let log = LogLines()
        let processor = StreamProcessor(configuration: configuration, program: program, logger: log.logger)
        let running = Task { try await processor.run() }
        #expect(try await waitUntil { processor.statistics.committedOffsets == first.count + later.count })
        processor.stop()
        try await running.value
        let decided = try decisions(in: cluster, configuration).values.compactMap { try? JSONReader.parse($0).object }
        let laterOffers = decided.filter { $0["type"]?.string == "offer" && ($0["customer_id"]?.string.flatMap { Int($0.dropFirst(2)) } ?? 0) >= 1_000 }
        #expect(!laterOffers.isEmpty && laterOffers.allSatisfy { $0["variant"]?.string == "calm" })
        #expect(log.messages.contains("variant paused"))
    }
}
