// The hot paths, one at a time, with ordo-one/benchmark: decoding an event, applying it to its
// customer (state update, rules, timers), encoding a state for the changelog, writing an output
// as JSON, and producing a record. Each figure is per operation (a run does a thousand), with
// the mallocs each takes, on the generated population of `upshift simulate` and the example
// workflows.
//
//   make bench-hot-paths       (swift package benchmark --target HotPaths)

import Benchmark
import Foundation
import Kafka
import Synchronization
import UpshiftCore

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .throughput, .mallocCountTotal],
        scalingFactor: .kilo,
        maxDuration: .seconds(3))

    Benchmark("Decode an event") { benchmark in
        let records = Population.shared.records
        for index in benchmark.scaledIterations {
            blackHole(try? Population.shared.decoder.decode(records[index % records.count]))
        }
    }

    Benchmark("Apply an event to its customer") { benchmark in
        Population.shared.replay.withLock { replay in
            for _ in benchmark.scaledIterations { blackHole(replay.next()) }
        }
    }

    Benchmark("Encode a customer state") { benchmark in
        let states = Population.shared.states
        for index in benchmark.scaledIterations { blackHole(StateCodec.encode(states[index % states.count])) }
    }

    Benchmark("Write an output as JSON") { benchmark in
        let outputs = Population.shared.outputs
        for index in benchmark.scaledIterations {
            var writer = JSONWriter()
            writer.write(outputs[index % outputs.count])
            blackHole(writer.bytes)
        }
    }

    Benchmark("Produce a record to the embedded broker") { benchmark in
        let broker = Broker.shared
        let records = Population.shared.records
        for index in benchmark.scaledIterations {
            let record = ProducerRecord(topic: "events", key: Array("customer-\(index)".utf8), value: records[index % records.count])
            do {
                _ = try broker.producer.send(record)
            } catch {
                benchmark.error("send failed: \(error)")
            }
        }
        // Sustained: a full queue makes `send` wait for the broker, so the rate is the broker's
        // once it falls behind. Reports are collected as the processor does, without waiting.
        let failed = broker.producer.deliveries().filter { (try? $0.result.get()) == nil }
        if !failed.isEmpty { benchmark.error("\(failed.count) records were not delivered") }
    }
}

/// The generated population and what the example workflows make of it, built once.
final class Population: Sendable {
    static let shared = Population()

    let decoder = EventDecoder()
    /// 100,000 records (an identify per customer, then events) over 10,000 customers.
    let records: [[UInt8]]
    let events: [Event]
    let program: Program
    /// Customer states and outputs at the end of a replay, to encode and to write.
    let states: [CustomerState]
    let outputs: [Output]
    /// An engine going through the events in order, starting over at their end.
    let replay: Mutex<Replay>

    private init() {
        let here = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let files = ["shared.yaml", "saas-quota.yaml", "ecommerce-warranty.yaml", "subscription-renewal.yaml"]
        program = try! ProgramLoader.load(files.map { name in
            (name: name, text: try! String(contentsOf: here.appendingPathComponent("deploy/workflows/\(name)"), encoding: .utf8))
        })
        let generator = PopulationGenerator(customers: 10_000, events: 90_000, start: ISO8601.parse("2026-03-01T00:00:00Z")!)
        records = generator.records().map { Array($0.utf8) }
        events = records.map { try! EventDecoder().decode($0) }
        var engine = StreamEngine(program: program)
        outputs = events.flatMap { engine.process($0) }
        states = engine.states.keys.sorted().map { engine.states[$0]! }
        replay = Mutex(Replay(program: program, events: events))
    }
}

/// The engine's place in the stream of events.
struct Replay: ~Copyable {
    let program: Program
    let events: [Event]
    var engine: StreamEngine
    var position = 0

    init(program: Program, events: [Event]) {
        self.program = program
        self.events = events
        engine = StreamEngine(program: program)
    }

    mutating func next() -> [Output] {
        if position == events.count {
            engine = StreamEngine(program: program)
            position = 0
        }
        defer { position += 1 }
        return engine.process(events[position])
    }
}

/// An embedded broker with one topic, and a producer to it.
final class Broker: Sendable {
    static let shared = Broker()

    let cluster: EmbeddedKafkaCluster
    let producer: KafkaProducer

    private init() {
        cluster = try! EmbeddedKafkaCluster(brokers: 1)
        try! cluster.createTopic("events", partitions: 8)
        producer = try! KafkaProducer(configuration: KafkaConfiguration(bootstrapServers: cluster.bootstrapServers, properties: ["linger.ms": "5"]))
    }
}
