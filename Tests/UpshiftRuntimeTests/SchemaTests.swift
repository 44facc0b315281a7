import Foundation
import Testing
import UpshiftCore
@testable import UpshiftRuntime

@Suite("Schemas")
struct SchemaTests {
    let population = PopulationGenerator(customers: 300, events: 8_000, start: ISO8601.parse("2026-03-01T00:00:00Z")!, seed: 4).records()

    @Test func everyOutputOfTheExamplesMatchesItsTopicSchema() throws {
        var replay = StreamEngine(program: try examples())
        var outputs = ReplayInput(lines: population.map { Substring($0) }).events.flatMap { replay.process($0) }
        outputs += replay.finish()
        for (kind, schema) in outputSchemas where kind != .pause {
            let documents = outputs.filter { $0.kind == kind }.map(\.jsonLine)
            #expect(!documents.isEmpty, "the population yields \(kind) outputs")
            let result = try schemaCheck(schema, documents)
            #expect(result.status == 0, "\(schema): \(result.output)")
        }
    }

    @Test func aPauseMatchesTheControlTopicSchema() throws {
        let program = try ProgramLoader.load([(name: "promo.yaml", text: """
            guardrails:
              unsubscribed: { event: "Unsubscribed", within: 30d, pause_above: 10%, minimum_sample: 5 }
            workflows:
              - id: promo
                trigger: { event: "Signed Up", count: 1, within: 1d }
                steps: [ { send: { channel: email, template: hello } } ]
            """)])
        var replay = StreamEngine(program: program)
        var outputs: [Output] = []
        for index in 0..<10 {
            let time = ISO8601.parse("2026-03-01T00:00:00Z")! + .minutes(Int64(index))
            for (name, id) in [("Signed Up", "s"), ("Unsubscribed", "u")] {
                outputs += replay.process(Event(kind: .track, customerID: "c-\(index)", userID: "c-\(index)", messageID: "\(id)-\(index)", timestamp: time, name: name))
            }
        }
        let pauses = outputs.filter { $0.kind == .pause }.map(\.jsonLine)
        #expect(pauses.count == 1)
        let result = try schemaCheck("pause.schema.json", pauses)
        #expect(result.status == 0, "\(result.output)")
    }

    @Test func generatedEventsMatchTheInputSchema() throws {
        let result = try schemaCheck("event.schema.json", population)
        #expect(result.status == 0, "\(result.output)")
    }

    @Test func theSchemaRejectsWhatTheDecoderRejects() throws {
        let rejected = [
            #"{"type":"track","userId":"c-1","event":"X","timestamp":"2026-03-01T00:00:00Z"}"#,
            #"{"type":"track","userId":"c-1","messageId":"m","timestamp":"yesterday","event":"X"}"#,
            #"{"type":"track","messageId":"m","timestamp":"2026-03-01T00:00:00Z","event":"X"}"#,
            #"{"type":"track","userId":"c-1","messageId":"m","timestamp":"2026-03-01T00:00:00Z"}"#,
            #"{"type":"purchase","userId":"c-1","messageId":"m","timestamp":"2026-03-01T00:00:00Z"}"#,
            #"{"type":"track","userId":42,"messageId":"m","timestamp":"2026-03-01T00:00:00Z","event":"X"}"#,
            #"{"type":"group","userId":"c-1","messageId":"m","timestamp":"2026-03-01T00:00:00Z"}"#,
        ]
        let decoder = EventDecoder()
        #expect(rejected.allSatisfy { (try? decoder.decode($0)) == nil })
        let result = try schemaCheck("event.schema.json", rejected)
        #expect(result.status == 1)
        #expect(Set(result.output.split(separator: "\n").map { $0.split(separator: ":")[1] }) == ["1", "2", "3", "4", "5", "6", "7"],
                "every line is reported: \(result.output)")
    }

    @Test func brokenOutputsAreRejectedNamingTheField() throws {
        let valid = #"{"type":"offer","decision_id":"0123456789abcdef","customer_id":"c-1","workflow_id":"quota-upgrade","workflow_version":3,"step":"steps[0]","variant":"a","channel":"email","template":"tier-comparison","event_time":"2026-03-01T00:00:00.000Z","decision_time":"2026-03-01T00:00:00.000Z"}"#
        #expect(try schemaCheck("offer.schema.json", [valid]).status == 0)
        let broken: [(schema: String, document: String, message: String)] = [
            ("offer.schema.json", valid.replacingOccurrences(of: #""channel":"email","#, with: #""channel":"fax","#), "channel: 'fax' is not one of"),
            ("offer.schema.json", valid.replacingOccurrences(of: #""customer_id":"c-1","#, with: ""), "'customer_id' is a required property"),
            ("task.schema.json", valid.replacingOccurrences(of: #""type":"offer""#, with: #""type":"task""#), "'queue' is a required property"),
            ("suppression.schema.json", valid.replacingOccurrences(of: #""type":"offer""#, with: #""type":"suppression""#), "'reasons' is a required property"),
            ("holdout.schema.json", valid.replacingOccurrences(of: #""workflow_version":3"#, with: #""workflow_version":"3""#), "workflow_version: '3' is not of type 'integer'"),
            ("outcome.schema.json", valid.replacingOccurrences(of: #""type":"offer""#, with: #""type":"exit""#), "'reasons' is a required property"),
            ("dead-letter.schema.json", #"{"upshift_dlq_reason":"missing","upshift_dlq_problem":"missing","upshift_dlq_field":"userId","upshift_dlq_topic":"events","upshift_dlq_partition":"0"}"#, "'upshift_dlq_offset' is a required property"),
        ]
        for sample in broken {
            let result = try schemaCheck(sample.schema, [sample.document])
            #expect(result.status == 1 && result.output.contains(sample.message), "\(sample.schema): \(result.output)")
        }
    }

    @Test func theShippedWorkflowsAndConfigurationMatchTheirSchemas() throws {
        let workflows = try FileManager.default.contentsOfDirectory(atPath: repository.appendingPathComponent("deploy/workflows").path)
            .filter { $0.hasSuffix(".yaml") }.map { repository.appendingPathComponent("deploy/workflows/\($0)").path }
        let schemas = repository.appendingPathComponent("schemas")
        let checked = try schemaCheck(["--yaml", schemas.appendingPathComponent("workflow.schema.json").path] + workflows)
        #expect(checked.status == 0, "\(checked.output)")
        let config = try schemaCheck(["--yaml", schemas.appendingPathComponent("config.schema.json").path, repository.appendingPathComponent("deploy/config/upshift.yaml").path])
        #expect(config.status == 0, "\(config.output)")
    }

    @Test func brokenWorkflowAndConfigurationFilesAreRejected() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("upshift-schema-\(getpid())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let workflow = directory.appendingPathComponent("broken-workflow.yaml")
        try """
            workflows:
              - id: nudge
                trigger: { event: "Pricing Viewed", within: soon }
                steps: [ { send: { channel: fax } } ]
            """.write(to: workflow, atomically: true, encoding: .utf8)
        let config = directory.appendingPathComponent("broken-config.yaml")
        try "application_id: upsell\nguarantee: maybe\n".write(to: config, atomically: true, encoding: .utf8)
        let schemas = repository.appendingPathComponent("schemas")
        let workflowResult = try schemaCheck(["--yaml", schemas.appendingPathComponent("workflow.schema.json").path, workflow.path])
        #expect(workflowResult.status == 1 && workflowResult.output.contains("workflows/0/steps/0/send/channel: 'fax' is not one of"), "\(workflowResult.output)")
        let configResult = try schemaCheck(["--yaml", schemas.appendingPathComponent("config.schema.json").path, config.path])
        #expect(configResult.status == 1 && configResult.output.contains("guarantee: 'maybe' is not one of"), "\(configResult.output)")
    }
}
