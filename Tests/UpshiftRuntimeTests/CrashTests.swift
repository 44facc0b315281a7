import Foundation
import Kafka
import Testing
import UpshiftCore
@testable import UpshiftRuntime

/// A population of `customers` and a last event per customer at a later date, which moves every
/// partition's stream time past all timers.
private func population(customers: Int, events: Int, seed: UInt64) -> [String] {
    PopulationGenerator(customers: customers, events: events, start: ISO8601.parse("2026-03-01T00:00:00Z")!, days: 40, seed: seed).records()
        + (0..<customers).map { #"{"type":"identify","userId":"customer-\#($0)","messageId":"end-\#($0)","timestamp":"2026-06-01T00:00:00Z"}"# }
}

@Suite("Crash recovery and scaling", .serialized)
struct CrashTests {
    @Test func killedProcessorsLoseAndRepeatNothing() async throws {
        let children = try ChildProcessors(application: "crash-test", partitions: 3)
        // About 3.5 MB per partition: under the embedded broker's retention. It arrives in slices
        // while each run works, and each kill follows a fresh slice at once, so that every kill
        // lands mid-stream however fast or loaded the machine is.
        let lines = population(customers: 80, events: 45_000, seed: 23)
        var slices = stride(from: 0, to: lines.count, by: 1_000).map { Array(lines[$0..<min(lines.count, $0 + 1_000)]) }[...]
        var produced: Int64 = 0
        func produceSlice() throws {
            let slice = slices.removeFirst()
            try children.produce(slice)
            produced += Int64(slice.count)
        }

        var progress: [Int64] = []
        var available: [Int64] = []
        try produceSlice()
        for kills in 0..<4 {
            let before = try children.changelogEnd()
            let process = try children.start("crash-1")
            let deadline = ContinuousClock.now + .seconds(60)
            while try children.changelogEnd() <= before, ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(20))
            }
            for _ in 0..<(1 + kills) {
                try produceSlice()
                try await Task.sleep(for: .milliseconds(150))
            }
            try produceSlice()
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            progress.append(try children.committedOffsets())
            available.append(produced)
        }
        while !slices.isEmpty { try produceSlice() }
        let last = try children.start("crash-1")
        #expect(try await children.waitForCommitted(lines.count), "\(children.tail(of: "crash-1"))")
        try await children.stop(last, "crash-1")

        #expect(progress == progress.sorted(), "committed offsets only move forward: \(progress)")
        #expect(progress.allSatisfy { $0 > 0 })
        #expect(zip(progress, available).allSatisfy { $0 < $1 }, "every kill lands mid-stream: \(progress) of \(available)")

        let expected = children.replay(lines)
        #expect(try children.committedOffsets() == Int64(lines.count))
        let states = try children.restoredStates()
        #expect(states.count == expected.states.count)
        #expect(states == expected.states, "\(children.differences(states, expected.states))")
        // The broker shows aborted transactions' records too, so readers dedupe by decision id.
        let decided = try children.decisions()
        #expect(Set(decided.keys) == Set(expected.decisions.keys), "none lost, none extra")
        #expect(decided == expected.decisions)
    }

    @Test func aSurvivorTakesOverAKilledInstancesPartitionsWithTheirState() async throws {
        let children = try ChildProcessors(application: "scale-test", partitions: 4)
        let lines = population(customers: 120, events: 16_000, seed: 31)
        let half = lines.count / 2
        try children.produce(Array(lines.prefix(half)))

        let survivor = try children.start("scale-1")
        let victim = try children.start("scale-2")
        func partitions(_ line: JSONObject) -> Set<String> {
            Set((line["partitions"]?.string ?? "").split(separator: ",").map(String.init))
        }
        func assigned(_ instance: String) -> Set<String> {
            children.log(of: instance).last { $0["message"]?.string == "assigned" }.map(partitions) ?? []
        }
        func logs() -> String { "\(children.tail(of: "scale-1"))\n\(children.tail(of: "scale-2"))" }
        // Both members share the partitions and have committed the first half.
        #expect(try await waitUntil { assigned("scale-1").count == 2 && assigned("scale-2").count == 2 }, "\(logs())")
        #expect(try await children.waitForCommitted(half), "\(logs())")
        let taken = assigned("scale-2")

        kill(victim.processIdentifier, SIGKILL)
        victim.waitUntilExit()
        try children.produce(Array(lines.dropFirst(half)))
        #expect(try await children.waitForCommitted(lines.count))
        try await children.stop(survivor, "scale-1")

        let all: Set<String> = ["events[0]", "events[1]", "events[2]", "events[3]"]
        #expect(assigned("scale-1") == all)
        let restores = children.log(of: "scale-1").filter { $0["message"]?.string == "restored" }
        let inherited = restores.filter { taken.contains("events[\($0["partition"]?.string ?? "")]") }
        #expect(!inherited.isEmpty && inherited.allSatisfy { Int($0["customers"]?.string ?? "") ?? 0 > 0 }, "restored what scale-2 had built: \(inherited)")

        let expected = children.replay(lines)
        let states = try children.restoredStates()
        #expect(states == expected.states, "\(children.differences(states, expected.states))")
        #expect(try children.decisions() == expected.decisions)
    }
}
