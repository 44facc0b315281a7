import ArgumentParser
import UpshiftCore

/// `upshift validate [--config FILE] [FILE...]`: checks a configuration and workflow files
/// together, as `upshift run` would load them.
struct ValidateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "validate",
        abstract: "Check a configuration and workflow files; report every problem with file, line, column and a hint.",
        discussion: """
            With --config, the configuration is checked (with the UPSHIFT_* environment applied) and the \
            workflow files it names are loaded with any given here. Files are loaded together: a workflow \
            may use metrics and suppressions declared in another file. Exits 1 when there is a problem.
            """
    )

    @Option(help: "The configuration file of upshift run (YAML).")
    var config: String?

    @Argument(help: "Workflow files (YAML), or directories of them.")
    var files: [String] = []

    func validate() throws {
        if config == nil, files.isEmpty { throw ValidationError("give workflow files, --config, or both") }
    }

    func run() throws {
        let workflows = try config.map { try loadConfiguration($0).workflows } ?? []
        let program = try loadProgram(workflows + files)
        print("ok: \(program.workflows.count) workflows, \(program.metrics.count) metrics, \(program.suppressions.count) suppressions, \(program.caps.count + program.quietHours.count) caps, \(program.guardrails.count) guardrails")
    }
}
