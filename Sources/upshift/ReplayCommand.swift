import ArgumentParser
import Foundation
import UpshiftCore

/// `upshift replay`: the engine over a file of events, in event-time order, with a simulated clock.
struct ReplayCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "replay",
        abstract: "Run workflows over a file of Segment JSON lines and write every output as a JSON line.",
        discussion: "Events are processed in event-time order; timers fire as the simulated clock passes them, and the ones still pending at the end fire too. The summary goes to standard error."
    )

    @Option(name: .customLong("workflows"), help: "A workflow file, or a directory of them (repeatable).")
    var workflowFiles: [String]

    @Argument(help: "Events, one JSON object per line.")
    var events: String

    @Option(help: "Where to write outputs; standard output when left out.")
    var out: String?

    func validate() throws {
        guard !workflowFiles.isEmpty else { throw ValidationError("give at least one --workflows file") }
    }

    func run() throws {
        let program = try loadProgram(workflowFiles)
        let text = try readText(events)
        var input = ReplayInput(lines: text.split(separator: "\n", omittingEmptySubsequences: false))
        var replay = StreamEngine(program: program)
        var summary = ReplaySummary()
        for rejected in input.rejected {
            summary.reject(rejected.error)
            printError("\(events):\(rejected.line): rejected: \(rejected.error)")
        }
        let sink = try OutputSink(path: out)
        let progressEvery = 100_000
        var handled = 0
        // Handed over, not shared: the engine swaps each event out and back instead of copying the list.
        let stream = input.events
        input.events = []
        let total = stream.count
        replay.handle(consume stream) { _, result in
            summary.record(result)
            sink.write(result.outputs)
            handled += 1
            if handled % progressEvery == 0 { printError("… \(handled) of \(total) events") }
        }
        let last = replay.finish()
        summary.record(last)
        sink.write(last)
        sink.close()
        printError(summary.report)
    }
}

/// JSON lines to a file or standard output, buffered.
final class OutputSink {
    private let handle: FileHandle
    private var buffer: [UInt8] = []

    init(path: String?) throws {
        if let path {
            guard FileManager.default.createFile(atPath: path, contents: nil) else {
                throw ValidationError("cannot write \(path)")
            }
            handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        } else {
            handle = FileHandle.standardOutput
        }
    }

    func write(_ outputs: [Output]) {
        for output in outputs {
            var writer = JSONWriter()
            writer.write(output)
            buffer += writer.bytes
            buffer.append(UInt8(ascii: "\n"))
        }
        if buffer.count > 1 << 20 { flush() }
    }

    func close() {
        flush()
        try? handle.synchronize()
    }

    private func flush() {
        handle.write(Data(buffer))
        buffer.removeAll(keepingCapacity: true)
    }
}
