import ArgumentParser

@main
struct Upshift: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "upshift",
        abstract: "An upsell workflow engine that runs as a Kafka stream processor.",
        subcommands: [BrokerCommand.self]
    )
}
