import Testing
@testable import UpshiftCore

@Suite("Restores mid-stream")
struct RestoreTests {
    /// What a processor does: customers split over partitions, each partition's engine rebuilt
    /// from its encoded states at random points between random batches, timers advanced to each
    /// partition's own stream time. It must end where one engine over the whole stream ends.
    @Test(arguments: [3, 11, 29] as [UInt64])
    func partitionsRestoredMidStreamEndWhereOneUninterruptedReplayEnds(seed: UInt64) throws {
        let program = try examplePrograms()
        let generator = PopulationGenerator(customers: 60, events: 6_000, start: at("2026-03-01T00:00Z"), days: 40, seed: seed)
        let lines = generator.records() + (0..<60).map { #"{"type":"identify","userId":"customer-\#($0)","messageId":"end-\#($0)","timestamp":"2026-06-01T00:00:00Z"}"# }
        let events = ReplayInput(lines: lines.map { Substring($0) }).events
        var replay = StreamEngine(program: program)
        for event in events { _ = replay.process(event) }

        var random = SplitMix(state: seed)
        var engines = (0..<4).map { _ in StreamEngine(program: program) }
        var streamTimes = [Timestamp?](repeating: nil, count: 4)
        var restores = 0
        var position = 0
        while position < events.count {
            let batch = events[position..<min(events.count, position + Int(random.next() % 500) + 1)]
            position += batch.count
            for event in batch {
                let partition = Int(StableHash.of([event.customerID]) % 4)
                _ = engines[partition].process(event)
                streamTimes[partition] = max(streamTimes[partition] ?? event.timestamp, event.timestamp)
            }
            for partition in 0..<4 {
                if let time = streamTimes[partition] { _ = engines[partition].advance(to: time) }
                guard random.next() % 3 == 0 else { continue }
                let states = try engines[partition].states.mapValues { try StateCodec.decode(StateCodec.encode($0), program: program) }
                engines[partition] = StreamEngine(program: program, states: states)
                restores += 1
            }
        }
        #expect(restores > 20)
        let restored = engines.reduce(into: [String: CustomerState]()) { $0.merge($1.states) { first, _ in first } }
        #expect(restored.count == 60)
        #expect(restored == replay.states)
    }
}
