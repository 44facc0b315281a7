import Foundation
import Testing

/// The `upshift` executable as people run it: on a folder of workflows, and with mistakes.
@Suite("upshift on the command line")
struct CommandLineTests {
    private let folder = repository.appendingPathComponent("deploy/workflows").path

    @Test func validateTakesAFolderOfWorkflowFiles() throws {
        let (status, printed) = try run(try upshiftExecutable(), ["validate", folder])
        #expect(status == 0)
        #expect(printed == "ok: 3 workflows, 3 metrics, 5 suppressions, 2 caps, 5 guardrails\n")
    }

    @Test func aMissingWorkflowFileIsNamed() throws {
        let (status, printed) = try run(try upshiftExecutable(), ["validate", "\(folder)/missing.yaml"])
        #expect(status == 64)
        #expect(printed.hasPrefix("Error: cannot read \(folder)/missing.yaml: no such file\n"))
    }

    @Test func testPassesOverTheWorkflowFilesBesideTheScenarios() throws {
        let (status, printed) = try run(try upshiftExecutable(), ["test", folder])
        let lines = printed.split(separator: "\n")
        #expect(status == 0)
        #expect(lines.filter { $0.hasPrefix("SKIP") } == ["ecommerce-warranty", "saas-quota", "shared", "subscription-renewal"].map {
            "SKIP \(folder)/\($0).yaml: a workflow file, not a scenario"
        })
        #expect(lines.filter { $0.hasPrefix("PASS") }.count == 15)
        #expect(lines.last == "15 passed, 0 failed")
    }

    @Test func simulateRefusesAPopulationWithoutCustomers() throws {
        let (status, printed) = try run(try upshiftExecutable(), ["simulate", "--customers", "0"])
        #expect(status == 64)
        #expect(printed.hasPrefix("Error: --customers: 0 is not a number of customers; give 1 or more\n"))
    }

    @Test func aScenarioWithMissingWorkflowsFailsAloneAndTheOthersRun() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("upshift-scenarios-\(getpid())-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        func scenario(named name: String, workflows: String) -> String {
            """
            name: \(name)
            workflows: [\(workflows)]
            traits: { plan: enterprise, quota: { api_calls: 10000 } }
            start: 2026-03-01T09:00:00Z
            events: []
            until: 2026-03-02T00:00:00Z
            expect: []
            """
        }
        try scenario(named: "absolute paths", workflows: folder).write(to: directory.appendingPathComponent("a.yaml"), atomically: true, encoding: .utf8)
        try scenario(named: "a missing file", workflows: "\(folder)/missing.yaml").write(
            to: directory.appendingPathComponent("b.yaml"), atomically: true, encoding: .utf8)

        let (status, printed) = try run(try upshiftExecutable(), ["test", directory.path])
        #expect(status == 1)
        #expect(Set(printed.split(separator: "\n")) == [
            "PASS \(directory.path)/a.yaml: absolute paths",
            "FAIL \(directory.path)/b.yaml: a missing file: cannot read \(folder)/missing.yaml: no such file",
            "1 passed, 1 failed",
        ])
    }
}
