import Foundation
import Kafka
import Testing
import UpshiftCore
@testable import UpshiftRuntime

@Suite("upshift report on the output topics")
struct ReportCommandTests {
    @Test func readsEachDecisionOnceFromTheTopicsAndPrintsWhatTheLibraryReports() async throws {
        let (cluster, configuration) = try prepare(partitions: 1)
        let program = try examples()
        var replay = StreamEngine(program: program)
        let lines = PopulationGenerator(customers: 400, events: 12_000, start: ISO8601.parse("2026-03-01T00:00:00Z")!, seed: 8).records()
        let outputs = ReplayInput(lines: lines.map { Substring($0) }).events.flatMap { replay.process($0) } + replay.finish()
        #expect(outputs.contains { $0.kind == .conversion })

        // As the processor writes them, with the first hundred twice, as an aborted transaction
        // read again would leave them on this broker.
        let records = OutputRecords(topics: configuration.topics, source: "test")
        let producer = try KafkaProducer(configuration: KafkaConfiguration(bootstrapServers: cluster.bootstrapServers))
        for output in outputs + outputs.prefix(100) { try producer.send(records.record(for: output)) }
        #expect(try producer.flush(timeout: .seconds(30)).allSatisfy { (try? $0.result.get()) != nil })

        let (status, printed) = try run(try upshiftExecutable(), ["report", "--brokers", cluster.bootstrapServers], errors: false)
        #expect(status == 0)
        #expect(printed == ExperimentReport(outputs: outputs.compactMap(\.json.object)).text + "\n")
    }
}
