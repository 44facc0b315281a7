// The decision engine alone, on one core: raw Segment JSON lines in, JSON outputs out.
//
// A generated population (100,000 customers, one identify each, then 1,000,000 events over 30
// days) runs through the three example workflows with replay's simulated clock. Reported: events
// per second for decoding alone and for the whole path (decode, state update, rules, timers,
// output encoding), and the growth of resident memory per customer over the run.
//
//   swift run -c release EngineThroughput [events] [customers]

import Foundation
import UpshiftCore

let eventCount = CommandLine.arguments.count > 1 ? Int(CommandLine.arguments[1])! : 1_000_000
let customerCount = CommandLine.arguments.count > 2 ? Int(CommandLine.arguments[2])! : 100_000

func seconds(_ body: () throws -> Void) rethrows -> Double {
    let start = ContinuousClock.now
    try body()
    let elapsed = ContinuousClock.now - start
    return Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
}

/// Resident memory, from /proc/self/statm: an upper bound on what the state holds, since freed
/// memory the allocator keeps counts too.
func residentBytes() -> Int {
    guard let statm = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return 0 }
    let fields = statm.split(separator: " ")
    return (fields.count > 1 ? Int(fields[1]) ?? 0 : 0) * Int(sysconf(Int32(_SC_PAGESIZE)))
}

let here = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
let workflows = ["shared.yaml", "saas-quota.yaml", "ecommerce-warranty.yaml", "subscription-renewal.yaml"].map { name in
    (name: name, text: try! String(contentsOf: here.appendingPathComponent("deploy/workflows/\(name)"), encoding: .utf8))
}
let program = try ProgramLoader.load(workflows)

let generator = PopulationGenerator(customers: customerCount, events: eventCount, start: ISO8601.parse("2026-03-01T00:00:00Z")!)
let lines = generator.records().map { Array($0.utf8) }
let inputBytes = lines.reduce(0) { $0 + $1.count }
print("\(lines.count) records (\(customerCount) identify, \(eventCount) events), \(inputBytes / lines.count) bytes on average")

let decoder = EventDecoder()
var decoded = 0
let decodeSeconds = seconds {
    for line in lines where (try? decoder.decode(line)) != nil { decoded += 1 }
}
precondition(decoded == lines.count)

let baseline = residentBytes()
var replay = Replay(program: program)
var outputCount = 0
var outputBytes = 0
let runSeconds = seconds {
    var writer = JSONWriter()
    for line in lines {
        let event = try! decoder.decode(line)
        for output in replay.process(event) {
            writer = JSONWriter()
            writer.write(output.json)
            outputBytes += writer.bytes.count + 1
            outputCount += 1
        }
    }
}
let heldBytes = residentBytes() - baseline

print(String(format: "decode only:           %9.0f records/s", Double(lines.count) / decodeSeconds))
print(String(format: "decode + engine + out: %9.0f records/s  (%.2f s, %d outputs, %.1f MB out)", Double(lines.count) / runSeconds, runSeconds, outputCount, Double(outputBytes) / 1e6))
print("state: \(replay.states.count) customers, resident memory grew \(heldBytes / max(replay.states.count, 1)) bytes per customer")
print(replay.summary.report.split(separator: "\n").prefix(1).joined())
