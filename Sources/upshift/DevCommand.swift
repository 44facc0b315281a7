import ArgumentParser
import Foundation
import Kafka
import Logging
import Synchronization
import UpshiftCore
import UpshiftRuntime

/// `upshift dev`: everything in one process, to watch Upshift work. An embedded broker, the
/// processor running the example workflows, a generated population streaming in, and the
/// decisions printed as they become readable (read_committed) on the output topics.
struct DevCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dev",
        abstract: "Run a demo: embedded broker, the example workflows, a generated population, decisions printed live.",
        discussion: "Event time runs fast: a month of a population's activity streams in within about half a minute, and the processor keeps time by the events (stream time)."
    )

    @Option(help: "Directory of workflow files (every .yaml in it).") var workflows = "deploy/workflows"
    @Option(help: "Number of customers.") var customers = 2_000
    @Option(help: "Number of activity events.") var events = 60_000
    @Option(help: "Events produced per second.") var rate = 3_000
    @Option(help: "Input partitions.") var partitions = 4

    func validate() throws {
        guard customers > 0 else { throw ValidationError("--customers: \(customers) is not a number of customers; give 1 or more") }
        guard events >= 0 else { throw ValidationError("--events: \(events) is negative") }
        guard rate > 0 else { throw ValidationError("--rate: \(rate) events per second would never finish; give 1 or more") }
        guard partitions > 0 else { throw ValidationError("--partitions: \(partitions) is not a number of partitions; give 1 or more") }
    }

    func run() async throws {
        let program = try loadProgram([workflows])
        let cluster = try EmbeddedKafkaCluster(brokers: 1)
        var kafka = KafkaConfiguration(bootstrapServers: cluster.bootstrapServers)
        kafka.sessionTimeout = .seconds(6)
        kafka.heartbeatInterval = .milliseconds(500)
        var configuration = RuntimeConfiguration(applicationID: "upshift-dev", instanceID: "dev-1", kafka: kafka, inputTopics: ["upshift.events"])
        configuration.clock = .streamTime
        try cluster.createTopics(for: configuration, inputPartitions: partitions)
        print("embedded Kafka at \(cluster.bootstrapServers); \(program.workflows.count) workflows: \(program.workflows.map(\.id).joined(separator: ", "))")
        print("streaming \(customers) customers and \(events) events at \(rate)/s; decisions appear as their transactions commit\n")

        let logger = Logger(label: "upshift") { LineLogHandler(label: $0, format: .text, write: { printError("  · \($0)") }) }
        let processor = StreamProcessor(configuration: configuration, program: program, logger: logger)
        let processing = Task { try await processor.run() }
        let printer = DecisionPrinter(cluster: cluster, topics: configuration.topics)
        let printing = Task { try await printer.run() }
        let signals = SignalWatcher { processor.stop(); printer.stop() }
        defer { signals.cancel() }

        let records = PopulationGenerator(customers: customers, events: events, start: ISO8601.parse("2026-03-01T00:00:00Z")!).records()
        try await KafkaThread(name: "feeder").run {
            try feed(records, to: cluster.bootstrapServers)
        }
        while processor.statistics.recordsIn < records.count, !printer.isStopped {
            try await Task.sleep(for: .milliseconds(200))
        }
        try await Task.sleep(for: .seconds(1))
        processor.stop()
        try await processing.value
        printer.stop()
        try await printing.value
        print("\n" + printer.summary(processor.statistics))
        cluster.stop()
    }

    /// Produces the records keyed by customer id, `rate` a second.
    private func feed(_ records: [String], to bootstrap: String) throws {
        let producer = try KafkaProducer(configuration: KafkaConfiguration(bootstrapServers: bootstrap))
        let decoder = EventDecoder()
        let slice = max(1, rate / 10)
        var next = ContinuousClock.now
        for start in stride(from: 0, to: records.count, by: slice) {
            for line in records[start..<min(records.count, start + slice)] {
                let key = (try? decoder.decode(line))?.customerID
                try producer.send(ProducerRecord(topic: "upshift.events", key: key.map { Array($0.utf8) }, value: Array(line.utf8)))
            }
            _ = producer.deliveries()
            next += .milliseconds(100)
            let wait = next - ContinuousClock.now
            if wait > .zero { Thread.sleep(forTimeInterval: Double(wait.components.attoseconds) / 1e18 + Double(wait.components.seconds)) }
        }
        let failed = try producer.flush(timeout: .seconds(30)).filter { (try? $0.result.get()) == nil }.count
        if failed > 0 { printError("\(failed) events were not delivered") }
    }
}

/// Reads the output topics and prints each decision once (the embedded broker shows aborted
/// transactions' records too, so decisions are deduplicated by id), keeping counts for the summary.
final class DecisionPrinter: Sendable {
    private let cluster: EmbeddedKafkaCluster
    private let topics: OutputTopics
    private let stopped = Atomic<Bool>(false)
    private let tally = Mutex(Tally())

    private struct Tally {
        var seen: Set<String> = []
        var counts: [String: Int] = [:]
    }

    init(cluster: EmbeddedKafkaCluster, topics: OutputTopics) {
        self.cluster = cluster
        self.topics = topics
    }

    var isStopped: Bool { stopped.load(ordering: .relaxed) }
    func stop() { stopped.store(true, ordering: .relaxed) }

    func run() async throws {
        try await KafkaThread(name: "printer").run { [self] in
            var settings = KafkaConfiguration(bootstrapServers: cluster.bootstrapServers)
            settings.groupID = "upshift-dev-printer"
            settings.isolationLevel = .readCommitted
            let consumer = try KafkaConsumer(configuration: settings)
            let watched = [
                topics.email, topics.inApp, topics.sms, topics.push, topics.customerSuccess, topics.suppressions, topics.holdouts,
                topics.outcomes, topics.control,
            ]
            try consumer.assign(watched.map { TopicPartitionOffset($0, 0, .beginning) })
            while !isStopped {
                for record in try consumer.poll(maxRecords: 500, timeout: .milliseconds(100)) {
                    show(record)
                }
            }
            // What is still in flight once the processor stopped.
            for record in try consumer.poll(maxRecords: 100_000, timeout: .milliseconds(500)) { show(record) }
        }
    }

    private func show(_ record: ConsumerRecord) {
        guard let value = record.value, case .object(let output)? = try? JSONReader.parse(String(decoding: value, as: UTF8.self)),
            let id = output["decision_id"]?.string
        else { return }
        let isNew = tally.withLock { tally in
            guard tally.seen.insert(id).inserted else { return false }
            tally.counts[Self.category(output), default: 0] += 1
            return true
        }
        guard isNew, let line = Self.line(output) else { return }
        print(line)
    }

    private static func category(_ output: JSONObject) -> String {
        let type = output["type"]?.string ?? "?"
        let workflow = output["workflow_id"]?.string ?? "-"
        switch type {
        case "offer": return "offers  \(workflow) \(output["channel"]?.string ?? "")"
        case "task": return "tasks   \(workflow) \(output["queue"]?.string ?? "")"
        case "suppression": return "held back \(workflow): \(output["reasons"].map(list) ?? "")"
        case "holdout": return "holdout \(workflow)"
        case "conversion": return "converted \(workflow) \(arm(output)): \(output["reasons"].map(list) ?? "")"
        case "guardrail": return "guardrail \(workflow) \(arm(output)): \(output["reasons"].map(list) ?? "")"
        case "pause": return "paused  \(workflow) \(output["variant"]?.string ?? ""): \(output["reasons"].map(list) ?? "")"
        default: return "exits   \(workflow): \(output["reasons"].map(list) ?? "")"
        }
    }

    private static func arm(_ output: JSONObject) -> String {
        output["evidence"]?.object?["arm"]?.string == "holdout" ? "holdout" : output["variant"]?.string ?? "treatment"
    }

    private static func list(_ value: JSONValue) -> String {
        guard case .array(let items) = value else { return "" }
        return items.compactMap(\.string).joined(separator: ", ")
    }

    /// One line per decision worth watching; exits and guardrail events are only counted.
    private static func line(_ output: JSONObject) -> String? {
        let time = String((output["event_time"]?.string ?? "").prefix(16)).replacingOccurrences(of: "T", with: " ")
        let customer = (output["customer_id"]?.string ?? "").padding(toLength: 14, withPad: " ", startingAt: 0)
        let workflow = (output["workflow_id"]?.string ?? "").padding(toLength: 22, withPad: " ", startingAt: 0)
        let step = output["step"]?.string ?? ""
        switch output["type"]?.string {
        case "offer":
            let channel = (output["channel"]?.string ?? "").padding(toLength: 7, withPad: " ", startingAt: 0)
            let what = output["template"]?.string ?? output["offer"].map { value -> String in
                var writer = JSONWriter()
                writer.write(value)
                return writer.text
            } ?? ""
            return "\(time)  OFFER     \(channel) \(customer) \(workflow) \(step.padding(toLength: 17, withPad: " ", startingAt: 0)) \(what)\(evidence(output))"
        case "task":
            return "\(time)  TASK      \(output["queue"]?.string ?? "") \(customer) \(workflow) \(output["template"]?.string ?? "")"
        case "suppression":
            return "\(time)  HELD BACK         \(customer) \(workflow) \(output["reasons"].map(list) ?? "")"
        case "holdout":
            return "\(time)  HOLDOUT           \(customer) \(workflow) (measured, not sent)"
        case "conversion":
            let revenue = output["evidence"]?.object?["revenue"]?.number.map { String(format: "   revenue %.2f", $0) } ?? ""
            return "\(time)  CONVERTED \(arm(output).padding(toLength: 9, withPad: " ", startingAt: 0)) \(customer) \(workflow) \(output["reasons"].map(list) ?? "")\(revenue)"
        case "pause":
            let rate = output["evidence"]?.object?["rate"]?.number.map { String(format: "%.1f%%", $0 * 100) } ?? ""
            return "\(time)  PAUSED    \(output["variant"]?.string ?? "")  \(workflow) \(output["reasons"].map(list) ?? "") at \(rate)"
        default:
            return nil
        }
    }

    private static func evidence(_ output: JSONObject) -> String {
        guard let evidence = output["evidence"]?.object, output["step"]?.string == "steps[0]" else { return "" }
        if let ratio = evidence["ratio"]?.number, let of = evidence["of"]?.string {
            return "   (\(Int((ratio * 100).rounded()))% of \(of) over \(evidence["window"]?.string ?? ""))"
        }
        if let event = evidence["event"]?.string { return "   (\(evidence["by"]?.string ?? "") after \(event))" }
        if let trait = evidence["trait"]?.string { return "   (\(evidence["by"]?.string ?? "") before \(trait))" }
        return ""
    }

    func summary(_ statistics: StreamProcessor.Statistics) -> String {
        let counts = tally.withLock { $0.counts }
        var lines = [
            "summary: \(statistics.recordsIn) events read, \(statistics.processed) processed, \(statistics.deadLettered) dead-lettered, \(statistics.transactionsCommitted) transactions committed"
        ]
        for (key, count) in counts.sorted(by: { $0.key < $1.key }) { lines.append("  \(key): \(count)") }
        return lines.joined(separator: "\n")
    }
}
