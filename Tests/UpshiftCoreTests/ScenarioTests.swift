import Foundation
import Testing
@testable import UpshiftCore

private let scenarioRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().appendingPathComponent("deploy/workflows/scenarios")

private func shippedScenarios() -> [String] {
    let walker = FileManager.default.enumerator(at: scenarioRoot, includingPropertiesForKeys: nil)!
    return walker.compactMap { ($0 as? URL)?.path }.filter { $0.hasSuffix(".yaml") }.sorted()
}

private func run(_ path: String) throws -> ScenarioResult {
    let scenario = try Scenario.decode(yaml: try String(contentsOfFile: path, encoding: .utf8))
    let base = URL(fileURLWithPath: path).deletingLastPathComponent()
    let files = try scenario.workflows.map { relative in
        let url = base.appendingPathComponent(relative).standardized
        return (name: url.lastPathComponent, text: try String(contentsOf: url, encoding: .utf8))
    }
    return scenario.run(try ProgramLoader.load(files))
}

@Suite("Scenarios")
struct ScenarioTests {
    @Test func everyExampleWorkflowHasScenarios() {
        let folders = Set(shippedScenarios().map { URL(fileURLWithPath: $0).deletingLastPathComponent().lastPathComponent })
        #expect(folders == ["saas-quota", "ecommerce-warranty", "subscription-renewal"])
    }

    @Test(arguments: shippedScenarios())
    func shippedScenarioPasses(path: String) throws {
        let result = try run(path)
        #expect(result.passed, "\(result.diff.joined(separator: "\n"))")
    }

    @Test func failingScenarioShowsWhatWasMissingAndWhatWasNot() throws {
        let yaml = """
            name: wrong expectations
            workflows: []
            start: 2026-03-01T09:00:00Z
            events:
              - { at: 2026-03-01T12:00:00Z, track: Delivery Confirmed }
            until: 2026-03-10T00:00:00Z
            expect:
              - { at: 2026-03-03T12:00:00Z, offer: email, template: warranty }
              - { at: 2026-03-04T12:00:00Z, offer: sms }
            """
        let program = try program("""
            workflows:
              - id: w
                trigger: { after: "Delivery Confirmed", by: 2d }
                steps: [ { send: { channel: email, template: warranty } } ]
            """)
        let result = try Scenario.decode(yaml: yaml).run(program)
        #expect(!result.passed)
        #expect(result.diff == [
            "  offer email, at 2026-03-03T12:00:00.000Z, template warranty",
            "- offer sms, at 2026-03-04T12:00:00.000Z",
            "+ exit completed, at 2026-03-03T12:00:00.000Z, workflow w",
        ])
    }

    @Test(arguments: [
        ("events: []", "name: missing"),
        ("name: x\nworkflows: shared.yaml", "workflows: expected a list"),
        ("name: x\nworkflows: []\nstart: 2026-03-01T09:00:00Z\nevents:\n  - { at: 2026-03-01T10:00:00Z, track: A }\n  - { at: yesterday, track: A }",
         "events[1].at: not an ISO-8601 date-time: yesterday"),
    ])
    func aMistakeInAScenarioNamesItsField(yaml: String, message: String) {
        let error = #expect(throws: ScenarioError.self) { try Scenario.decode(yaml: yaml) }
        #expect(error?.description == message)
    }

    @Test func workflowFilesBesideTheScenariosAreToldApart() throws {
        let workflows = ["shared.yaml", "saas-quota.yaml", "ecommerce-warranty.yaml", "subscription-renewal.yaml"]
            .map { scenarioRoot.deletingLastPathComponent().appendingPathComponent($0).path }
        for path in workflows { #expect(Scenario.isWorkflowFile(yaml: try String(contentsOfFile: path, encoding: .utf8)), "\(path)") }
        for path in shippedScenarios() { #expect(!Scenario.isWorkflowFile(yaml: try String(contentsOfFile: path, encoding: .utf8)), "\(path)") }
        #expect(!Scenario.isWorkflowFile(yaml: "not: [valid"))
    }
}
