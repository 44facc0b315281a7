// The decision engine alone, on one core: raw Segment JSON lines in, JSON outputs out.
//
// A generated population (100,000 customers, one identify each, then 1,000,000 events over 30
// days) runs through the three example workflows with replay's simulated clock. Reported: events
// per second for decoding alone, for the engine alone (events handed over one at a time, and in
// groups), and for the whole path (decode a poll's worth of lines, state update, rules, timers,
// output encoding), and the bytes of state per customer as the changelog would store it.
//
//   swift run -c release EngineThroughput [events] [customers] [--profile whole|grouped]
//
// With `--profile`, only that part runs, once, inside a function of its own
// (`wholePath(_:through:)` or `groupedEngine(_:through:)`), so that a profiler can count it
// alone: the README's Decision engine section gives the callgrind command. The whole path's rate
// is printed too, for quick comparisons of two builds.

import Foundation
import UpshiftCore

var arguments = Array(CommandLine.arguments.dropFirst())
var profiled: String?
if let flag = arguments.firstIndex(of: "--profile") {
    profiled = flag + 1 < arguments.count ? arguments[flag + 1] : ""
    arguments.removeSubrange(flag..<min(flag + 2, arguments.count))
}
let eventCount = arguments.count > 0 ? Int(arguments[0])! : 1_000_000
let customerCount = arguments.count > 1 ? Int(arguments[1])! : 100_000

func seconds(_ body: () throws -> Void) rethrows -> Double {
    let start = ContinuousClock.now
    try body()
    let elapsed = ContinuousClock.now - start
    return Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
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
/// Records decoded and handed to the engine together, as a consumer's poll would hand them over.
let pollSize = 500

/// The process's resident memory, from /proc/self/statm, after glibc's `malloc_trim` has handed
/// freed memory back to the system (it is not in the Glibc module, hence dlsym).
func residentBytes() -> Int {
    typealias Trim = @convention(c) (Int) -> Int32
    if let symbol = dlsym(dlopen(nil, RTLD_NOW), "malloc_trim") {
        _ = unsafeBitCast(symbol, to: Trim.self)(0)
    }
    let statm = (try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8)) ?? ""
    let pages = statm.split(separator: " ").dropFirst().first.flatMap { Int($0) } ?? 0
    return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
}

/// What the whole path made of the records.
struct WholePathCounts {
    var outputs = 0
    var outputBytes = 0
    var applied = 0
    var duplicates = 0
    var late = 0
}

/// The whole path: a poll's worth of lines decoded at a time and handed to `engine`, each output
/// written as JSON. The engine is the caller's, so that freeing its states is not counted.
@inline(never)
func wholePath(_ lines: [[UInt8]], through engine: inout StreamEngine) -> WholePathCounts {
    var counts = WholePathCounts()
    for start in stride(from: 0, to: lines.count, by: pollSize) {
        // A new array per poll, handed over as a consumer's poll would be.
        var group: [Event] = []
        group.reserveCapacity(pollSize)
        for line in lines[start..<min(start + pollSize, lines.count)] { group.append(try! decoder.decode(line)) }
        engine.handle(consume group) { _, result in
            switch result.disposition {
            case .applied: counts.applied += 1
            case .duplicate: counts.duplicates += 1
            case .late: counts.late += 1
            }
            for output in result.outputs {
                var writer = JSONWriter()
                writer.write(output)
                counts.outputBytes += writer.bytes.count + 1
                counts.outputs += 1
            }
        }
    }
    return counts
}

/// Decoded events handed to `engine` in one group; the number of outputs.
@inline(never)
func groupedEngine(_ events: consuming [Event], through engine: inout StreamEngine) -> Int {
    var outputs = 0
    // Handed over, not shared: the engine swaps each event out and back instead of copying it.
    engine.handle(consume events) { _, result in outputs += result.outputs.count }
    return outputs
}

switch profiled {
case "whole"?:
    var engine = StreamEngine(program: program)
    var counts = WholePathCounts()
    let elapsed = seconds { counts = wholePath(lines, through: &engine) }
    print("whole path: \(counts.outputs) outputs, \(counts.outputBytes) bytes")
    print(String(format: "whole path: %.0f records/s", Double(lines.count) / elapsed))
    exit(0)
case "grouped"?:
    var engine = StreamEngine(program: program)
    print("grouped engine: \(groupedEngine(lines.map { try! decoder.decode($0) }, through: &engine)) outputs")
    exit(0)
case nil:
    break
case let other?:
    print("--profile takes whole or grouped, not \"\(other)\"")
    exit(2)
}

// First, before anything else is allocated and freed: how much resident memory the states of
// every customer take, windows, timers and the allocator's overhead included. Each event is
// decoded and dropped at once, so what stays is what the engine holds.
let residentBefore = residentBytes()
var resident = StreamEngine(program: program)
for line in lines { _ = resident.process(try! decoder.decode(line)) }
let residentPerCustomer = (residentBytes() - residentBefore) / max(resident.states.count, 1)
let sizes = resident.states.values.map { StateCodec.encode($0).count }.sorted()
resident = StreamEngine(program: program)

var events: [Event] = []
events.reserveCapacity(lines.count)
let decodeSeconds = seconds {
    for line in lines { events.append(try! decoder.decode(line)) }
}

var oneByOne = StreamEngine(program: program)
var oneByOneOutputs = 0
let oneByOneSeconds = seconds {
    for event in events { oneByOneOutputs += oneByOne.process(event).count }
}
oneByOne = StreamEngine(program: program)
var grouped = StreamEngine(program: program)
var groupedOutputs = 0
let groupedSeconds = seconds {
    let handed = events
    events = []
    groupedOutputs = groupedEngine(consume handed, through: &grouped)
}
precondition(groupedOutputs == oneByOneOutputs, "handling events in groups changed the outputs")
grouped = StreamEngine(program: program)

var replay = StreamEngine(program: program)
var counts = WholePathCounts()
let runSeconds = seconds { counts = wholePath(lines, through: &replay) }
replay = StreamEngine(program: program)

print(String(format: "decode only:           %9.0f records/s", Double(lines.count) / decodeSeconds))
print(String(format: "engine only:           %9.0f records/s  (decoded events in, outputs as values; one at a time)", Double(lines.count) / oneByOneSeconds))
print(String(format: "engine only, grouped:  %9.0f records/s  (the same, handled in groups)", Double(lines.count) / groupedSeconds))
print(String(format: "decode + engine + out: %9.0f records/s  (%.2f s, %d outputs, %.1f MB out)", Double(lines.count) / runSeconds, runSeconds, counts.outputs, Double(counts.outputBytes) / 1e6))
print("state: \(sizes.count) customers, encoded \(sizes.reduce(0, +) / max(sizes.count, 1)) bytes per customer on average, \(sizes[sizes.count / 2]) median, \(sizes.last ?? 0) largest")
print("state in memory: \(residentPerCustomer) bytes of resident memory per customer (growth over \(customerCount) customers)")
print("events: \(counts.applied) applied, \(counts.duplicates) duplicates, \(counts.late) late")
