import Testing
@testable import UpshiftCore

@Suite("Workflow files")
struct ProgramLoaderTests {
    @Test func shippedExamplesLoadInPriorityOrder() throws {
        let program = try examplePrograms()
        #expect(program.workflows.map(\.id) == ["quota-upgrade", "renewal-annual-plan", "post-delivery-warranty"])
        #expect(program.metrics.map(\.name) == ["api_calls_30d", "locked_features_7d", "sessions_30d"])
        let quota = program.workflows[0]
        #expect(quota.version == 3)
        #expect(quota.holdoutPercent == 10)
        #expect(quota.variants.map(\.name) == ["a", "b"])
        #expect(quota.instructions.map(\.label) == [
            "steps[0]", "steps[1]", "steps[2]", "steps[3]", "steps[4]", "steps[5]", "steps[5].then[0]", "steps[5].then",
            "steps[5].else[0]",
        ])
        #expect(quota.instructions[5].operation == .waitFor(event: "Trial Started", within: .days(3), timeout: 8))
        #expect(quota.instructions[7].operation == .jump(9))
    }

    @Test func reportsEveryProblemWithLineColumnAndHint() {
        let yaml = """
            metrics:
              calls: { sum: quantity, of: "Usage Recorded", window: 3x }
            suppressions:
              ticket: { between: ["Ticket Opened", "Ticket Closed"] }
            workflows:
              - id: broken
                trigger: { ratio: api_calls, to: trait.quota, at_least: 0.8 }
                suppress: [tickets]
                steps:
                  - send: { channel: email, template: a }
                  - exit: true
                  - send: { channel: email, template: b }
              - id: typo
                triger: { metric: calls, at_least: 1 }
                steps: [ { send: { channel: fax, template: a } } ]
            """
        let error = #expect(throws: DiagnosticsError.self) { try ProgramLoader.load(yaml: yaml, file: "flows.yaml") }
        #expect(error?.diagnostics.map(\.description) == [
            "flows.yaml:2:57: error: metric calls: window: \"3x\" is not a duration (hint: write a whole number and a unit: 90s, 15m, 12h, 30d, 2w)",
            "flows.yaml:7:23: error: workflow broken: unknown metric \"api_calls\" (hint: no metrics are declared)",
            "flows.yaml:8:15: error: workflow broken: unknown suppression \"tickets\" (hint: did you mean \"ticket\"?)",
            "flows.yaml:12:9: error: workflow broken: steps[2] is unreachable: it follows an exit (hint: remove it, or move the exit after it)",
            "flows.yaml:14:5: error: unknown key \"triger\" in a workflow (hint: did you mean \"trigger\"?)",
            "flows.yaml:13:5: error: workflow typo needs a trigger",
        ])
    }

    @Test func unknownChannelSuggestsATaskForCustomerSuccess() {
        let yaml = """
            workflows:
              - id: cs
                trigger: { after: "X", by: 1d }
                steps: [ { send: { channel: customer_success, template: a } } ]
            """
        let error = #expect(throws: DiagnosticsError.self) { try ProgramLoader.load(yaml: yaml, file: "cs.yaml") }
        #expect(error?.diagnostics.map(\.description) == [
            "cs.yaml:4:33: error: workflow cs: steps[0]: unknown channel \"customer_success\" (hint: channels are email, in_app, sms, push; use a task step for customer success)"
        ])
    }

    @Test func variantsMustAddUpToAHundredPercent() {
        let yaml = """
            workflows:
              - id: ab
                trigger: { after: "X", by: 1d }
                variants: { a: 50%, b: 40% }
                steps: [ { send: { channel: email, template: a } } ]
            """
        let error = #expect(throws: DiagnosticsError.self) { try ProgramLoader.load(yaml: yaml, file: "ab.yaml") }
        #expect(error?.diagnostics.map(\.description) == ["ab.yaml:4:15: error: workflow ab: variants add up to 90.0%, not 100%"])
    }

    @Test func brokenYAMLPointsAtTheProblem() {
        let error = #expect(throws: DiagnosticsError.self) { try ProgramLoader.load(yaml: "workflows:\n  - id: [unclosed\n", file: "bad.yaml") }
        #expect(error?.diagnostics.count == 1)
        #expect(error?.diagnostics.first?.line == 3)
        #expect(error?.diagnostics.first?.message.hasPrefix("not valid YAML:") == true)
    }

    @Test(arguments: [("90s", 90_000), ("15m", 900_000), ("12h", 43_200_000), ("30d", 2_592_000_000), ("2w", 1_209_600_000), ("250ms", 250)])
    func parsesDurations(text: String, milliseconds: Int64) {
        #expect(TimeSpan(parsing: text)?.milliseconds == milliseconds)
        #expect(TimeSpan(parsing: text)?.description == (text == "2w" ? "2w" : text == "250ms" ? "250ms" : text))
    }

    @Test(arguments: ["3x", "-1d", "d", "1.5d", ""])
    func refusesBadDurations(text: String) {
        #expect(TimeSpan(parsing: text) == nil)
    }
}
