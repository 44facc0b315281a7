import ArgumentParser
import UpshiftCore

/// `upshift validate FILE...`: checks workflow files together, as the engine would load them.
struct ValidateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "validate",
        abstract: "Check workflow files; report every problem with file, line, column and a hint.",
        discussion: "Files are loaded together: a workflow may use metrics and suppressions declared in another file. Exits 1 when there is a problem."
    )

    @Argument(help: "Workflow files (YAML).")
    var files: [String]

    func run() throws {
        let program = try loadProgram(files)
        print("ok: \(program.workflows.count) workflows, \(program.metrics.count) metrics, \(program.suppressions.count) suppressions, \(program.caps.count + program.quietHours.count) caps")
    }
}
