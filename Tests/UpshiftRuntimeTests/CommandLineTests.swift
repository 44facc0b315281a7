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
}
