import ArgumentParser
import Foundation
import Kafka
import UpshiftCore

/// `upshift simulate`: a generated customer population, to a file or a topic.
struct SimulateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "simulate",
        abstract: "Write a generated population of Segment events: customers near quotas, opening tickets, failing payments, upgrading.",
        discussion: "Records are in event-time order: one identify per customer, then the activity. The same seed gives the same stream."
    )

    @Option(help: "Number of customers.") var customers = 1_000
    @Option(help: "Number of activity events.") var events = 20_000
    @Option(help: "Days the events span.") var days = 30
    @Option(help: "Event time of the first record (ISO-8601).") var start = "2026-03-01T00:00:00Z"
    @Option(help: "Seed of the generator.") var seed: UInt64 = 1
    @Option(help: "Write JSON lines to this file (standard output when neither --out nor --topic is given).") var out: String?
    @Option(help: "Produce to this topic instead, keyed by customer id.") var topic: String?
    @Option(help: "Bootstrap servers for --topic.") var brokers = "localhost:9092"

    func validate() throws {
        guard customers > 0 else { throw ValidationError("--customers: \(customers) is not a number of customers; give 1 or more") }
        guard events >= 0 else { throw ValidationError("--events: \(events) is negative") }
        guard days > 0 else { throw ValidationError("--days: \(days) is not a span; give 1 or more") }
        guard ISO8601.parse(start) != nil else { throw ValidationError("--start: \"\(start)\" is not an ISO-8601 date-time") }
    }

    func run() throws {
        let startTime = ISO8601.parse(start)!
        let generator = PopulationGenerator(customers: customers, events: events, start: startTime, days: days, seed: seed)
        if let topic {
            let producer = try KafkaProducer(configuration: KafkaConfiguration(bootstrapServers: brokers))
            let decoder = EventDecoder()
            try generator.records().forEach { line in
                let key = (try? decoder.decode(line))?.customerID
                try producer.send(ProducerRecord(topic: topic, key: key.map { Array($0.utf8) }, value: Array(line.utf8)))
            }
            let failed = try producer.flush(timeout: .seconds(60)).filter { (try? $0.result.get()) == nil }.count
            guard failed == 0 else { throw ValidationError("\(failed) records were not delivered to \(topic)") }
            printError("produced \(customers + events) records to \(topic)")
        } else {
            let text = generator.records().joined(separator: "\n") + "\n"
            if let out {
                try text.write(toFile: out, atomically: true, encoding: .utf8)
            } else {
                FileHandle.standardOutput.write(Data(text.utf8))
            }
        }
    }
}
