import ArgumentParser
import Foundation
import Logging
import UpshiftRuntime

/// `upshift run --config upshift.yaml`: the stream processor against a Kafka cluster.
struct RunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run the stream processor: read product events, decide, write offers, tasks and suppressions.",
        discussion: "Stops on SIGINT or SIGTERM after finishing its batch and committing."
    )

    @Option(help: "The configuration file (YAML).")
    var config: String

    @Option(help: "Log lines as json (for log collectors) or text.")
    var logFormat: LineLogHandler.Format = .json

    func run() async throws {
        let file = try RunConfiguration.load(config)
        let (configuration, workflows) = try file.runtime(relativeTo: config)
        let program = try loadProgram(workflows)
        let format = logFormat
        let logger = Logger(label: "upshift") { LineLogHandler(label: $0, format: format) }
        let processor = StreamProcessor(configuration: configuration, program: program, logger: logger)
        // The processor gives up at its shutdown timeout; librdkafka may then take a few seconds
        // more to close clients that cannot reach a broker. Past that margin, exit regardless.
        let hardLimit = configuration.shutdownTimeout + .seconds(15)
        let signals = SignalWatcher {
            processor.stop()
            DispatchQueue.global().asyncAfter(deadline: .now() + .milliseconds(Int(hardLimit / .milliseconds(1)))) {
                logger.critical("shutdown exceeded \(hardLimit); exiting without a clean close")
                Foundation.exit(70)
            }
        }
        defer { signals.cancel() }
        try await processor.run()
    }
}

/// Calls back on SIGINT or SIGTERM. The dispatch sources are only cancelled, from any thread.
final class SignalWatcher: @unchecked Sendable {
    private let sources: [DispatchSourceSignal]

    init(_ handler: @escaping @Sendable () -> Void) {
        sources = [SIGINT, SIGTERM].map { number in
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler(handler: handler)
            source.resume()
            return source
        }
    }

    func cancel() { sources.forEach { $0.cancel() } }
}

extension LineLogHandler.Format: ExpressibleByArgument {}
