import ArgumentParser
import Foundation
import Logging
import Prometheus
import UpshiftRuntime

/// `upshift run --config upshift.yaml`: the stream processor against a Kafka cluster.
struct RunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run the stream processor: read product events, decide, write offers, tasks and suppressions.",
        discussion: """
            Settings come from the file, overridden by UPSHIFT_* environment variables (see the README). \
            Serves /metrics, /healthz and /readyz on http_port. Stops on SIGINT or SIGTERM after finishing \
            its batch and committing.
            """
    )

    @Option(help: "The configuration file (YAML).")
    var config: String

    func run() async throws {
        let file = try loadConfiguration(config)
        let program = try loadProgram(file.workflows)
        var logger = Logger(label: "upshift") { LineLogHandler(label: $0, format: file.logFormat) }
        logger.logLevel = file.logLevel
        let registry = PrometheusCollectorRegistry()
        let processor = StreamProcessor(
            configuration: file.runtime, program: program, logger: logger, metrics: PrometheusMetricsFactory(registry: registry))
        let server = try await HealthServer(
            port: file.httpPort, metrics: { registry.emitToBuffer() }, isReady: { processor.statistics.isReady })
        logger.info("serving /metrics, /healthz and /readyz", metadata: ["port": "\(server.port)"])

        // The processor gives up at its shutdown timeout; librdkafka may then take a few seconds
        // more to close clients that cannot reach a broker. Past that margin, exit regardless.
        let hardLimit = file.runtime.shutdownTimeout + .seconds(15)
        let signals = SignalWatcher { [logger] in
            processor.stop()
            DispatchQueue.global().asyncAfter(deadline: .now() + .milliseconds(Int(hardLimit / .milliseconds(1)))) {
                logger.critical("shutdown exceeded \(hardLimit); exiting without a clean close")
                Foundation.exit(70)
            }
        }
        defer { signals.cancel() }
        do {
            try await processor.run()
        } catch {
            await server.stop()
            throw error
        }
        await server.stop()
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
