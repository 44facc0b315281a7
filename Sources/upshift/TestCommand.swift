import ArgumentParser
import Foundation
import UpshiftCore

/// `upshift test DIR`: scenario files as a QA checklist before a workflow goes live.
struct TestCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "test",
        abstract: "Run workflow scenarios (YAML): given traits and events, expect these outputs and no others.",
        discussion: "Every .yaml file under DIR is a scenario, except workflow files kept beside them, which are passed over. A failure prints a diff: '-' expected but missing, '+' produced but not expected. Exits 1 when any scenario fails."
    )

    @Argument(help: "A directory of scenario files.")
    var directory: String

    func run() throws {
        let root = URL(fileURLWithPath: directory)
        guard let walker = FileManager.default.enumerator(at: root, includingPropertiesForKeys: nil) else {
            throw ValidationError("cannot read directory \(directory)")
        }
        let paths = walker.compactMap { ($0 as? URL)?.path }.filter { $0.hasSuffix(".yaml") || $0.hasSuffix(".yml") }.sorted()
        var (scenarios, failures) = (0, 0)
        for path in paths {
            let text = try readText(path)
            if Scenario.isWorkflowFile(yaml: text) {
                print("SKIP \(path): a workflow file, not a scenario")
                continue
            }
            scenarios += 1
            let scenario: Scenario
            do {
                scenario = try Scenario.decode(yaml: text)
            } catch {
                printError("FAIL \(path): not a scenario: \(error)")
                failures += 1
                continue
            }
            let base = URL(fileURLWithPath: path).deletingLastPathComponent()
            let program: Program
            do {
                program = try loadProgram(scenario.workflows.map { $0.hasPrefix("/") ? $0 : base.appendingPathComponent($0).standardized.path })
            } catch {
                // One scenario's broken workflows fail that scenario; the others still run. The
                // workflow files' own problems were printed as they were found.
                printError("FAIL \(path): \(scenario.name): \((error as? ValidationError)?.message ?? "its workflows have errors (above)")")
                failures += 1
                continue
            }
            let result = scenario.run(program)
            if result.passed {
                print("PASS \(path): \(scenario.name)")
            } else {
                failures += 1
                print("FAIL \(path): \(scenario.name)")
                for line in result.diff { print("    \(line)") }
            }
        }
        guard scenarios > 0 else { throw ValidationError("no scenario files (.yaml) under \(directory)") }
        print("\(scenarios - failures) passed, \(failures) failed")
        if failures > 0 { throw ExitCode(1) }
    }
}
