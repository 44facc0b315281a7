import ArgumentParser
import Foundation
import Kafka
import UpshiftCore
import UpshiftRuntime

/// `upshift report`: did the upsell work, and did it hurt trust? From replay output files or
/// from the output topics.
struct ReportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "Report conversions and guardrails per workflow and variant against the holdout, with lift and 95% intervals.",
        discussion: """
            Reads outputs from JSON-lines files (upshift replay --out) or, with --brokers, from the output topics \
            (read_committed, from the beginning, each decision id once). Prints the report and, with --html, writes \
            a self-contained page with charts.
            """
    )

    @Argument(help: "Output files (JSON lines), as upshift replay --out writes them.")
    var files: [String] = []

    @Option(help: "Read the output topics of this cluster instead of files.")
    var brokers: String?

    @Option(help: "With --brokers: the configuration file whose topic names to read (defaults otherwise).")
    var config: String?

    @Option(help: "Also write the report as a self-contained HTML page here.")
    var html: String?

    func validate() throws {
        if files.isEmpty == (brokers == nil) { throw ValidationError("give output files, or --brokers, not both") }
    }

    func run() throws {
        let outputs = try brokers.map { try readTopics($0) } ?? readFiles()
        let report = ExperimentReport(outputs: outputs)
        print(report.text)
        if let html {
            try report.html.write(toFile: html, atomically: true, encoding: .utf8)
            printError("wrote \(html)")
        }
    }

    private func readFiles() throws -> [JSONObject] {
        var outputs: [JSONObject] = []
        for file in files {
            for (number, line) in try readText(file).split(separator: "\n").enumerated() where !line.isEmpty {
                guard let object = (try? JSONReader.parse(String(line)))?.object else {
                    throw ValidationError("\(file):\(number + 1): not a JSON object")
                }
                outputs.append(object)
            }
        }
        return outputs
    }

    /// Every committed record of the output topics, up to their ends as they are now.
    private func readTopics(_ brokers: String) throws -> [JSONObject] {
        let names = try config.map { try loadConfiguration($0).runtime.topics } ?? OutputTopics()
        var settings = KafkaConfiguration(bootstrapServers: brokers)
        settings.groupID = "upshift-report-\(getpid())"
        settings.isolationLevel = .readCommitted
        let reader = try KafkaConsumer(configuration: settings)
        defer { try? reader.close() }
        let admin = try KafkaAdmin(configuration: KafkaConfiguration(bootstrapServers: brokers))
        let topics = [names.email, names.inApp, names.sms, names.push, names.customerSuccess, names.suppressions, names.holdouts, names.outcomes]
        let partitions = try admin.describeTopics(topics).flatMap { topic in topic.partitions.map { TopicPartition(topic.name, $0.id) } }
        var ends: [TopicPartition: Int64] = [:]
        for partition in partitions { ends[partition] = try reader.watermarks(of: partition).high }
        try reader.assign(partitions.map { TopicPartitionOffset($0, .beginning) })
        var byDecision: [String: JSONObject] = [:]
        var order: [String] = []
        var unreadable = 0
        func done() throws -> Bool {
            try reader.position(partitions).allSatisfy { position in
                let end = ends[position.topicPartition] ?? 0
                return end == 0 || (position.offset.isAbsolute && position.offset.rawValue >= end)
            }
        }
        while try !done() {
            let records = try reader.poll(maxRecords: 10_000, timeout: .seconds(5))
            if records.isEmpty, try !done() { throw ValidationError("the output topics stopped short of their ends; is the cluster reachable?") }
            for record in records {
                guard let object = (try? JSONReader.parse(String(decoding: record.value ?? [], as: UTF8.self)))?.object,
                    let id = object["decision_id"]?.string
                else {
                    unreadable += 1
                    continue
                }
                if byDecision[id] == nil { order.append(id) }
                byDecision[id] = object
            }
        }
        if unreadable > 0 { printError("\(unreadable) records of the output topics are not Upshift outputs and were left out") }
        return order.map { byDecision[$0]! }
    }
}
