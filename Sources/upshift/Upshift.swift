import ArgumentParser

@main
struct Upshift: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "upshift",
        abstract: "An upsell workflow engine that runs as a Kafka stream processor.",
        subcommands: [RunCommand.self, DevCommand.self, SimulateCommand.self, ValidateCommand.self, ReplayCommand.self, ReportCommand.self, TestCommand.self, BrokerCommand.self]
    )
}
