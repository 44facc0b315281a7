// End-to-end throughput and latency of the stream processor through the embedded broker.
//
// Throughput: 1,000,000 generated events over 100,000 customers (the demo's population and the
// example workflows) are preloaded into 64 partitions, which keeps each under the embedded
// broker's 5 MB retention (checked before reading). One processor instance reads them all, with
// exactly-once on and then off (at least once); the clock runs from its first record to the commit
// of the last input offset. Beside it, on the same records, the ceiling: one consumer reading
// them and one producer writing each back out, with this project's Kafka layer and no engine.
//
// Latency: events are produced at a steady rate (20,000/s by default) to a processor running a
// one-step workflow that decides on every event, with the default 100 ms commit interval and the
// wall clock. Each decision's latency is the time from its event's production (the event's
// timestamp) until a read_committed reader sees it.
//
// Every phase starts a fresh embedded cluster. Both cores are shared by the broker, the processor
// and the load, so runs vary; the benchmark prints each figure as measured.
//
//   swift run -c release StreamThroughput [events] [customers] [latency-rate] [latency-seconds]

import Foundation
import Kafka
import Synchronization
import UpshiftCore
import UpshiftRuntime

let arguments = CommandLine.arguments.dropFirst().map { Int($0)! }
let eventCount = arguments.count > 0 ? arguments[0] : 1_000_000
let customerCount = arguments.count > 1 ? arguments[1] : 100_000
let latencyRate = arguments.count > 2 ? arguments[2] : 20_000
let latencySeconds = arguments.count > 3 ? arguments[3] : 15
let partitions = 64
/// The high-level consumer's prefetch limits apply to all partitions together; these give each of
/// the 64 partitions librdkafka's per-partition defaults, as in the Kafka benchmark.
let consumerProperties = [
    "queued.min.messages": String(min(100_000 * partitions, 10_000_000)),
    "queued.max.messages.kbytes": "2097151",
    "fetch.wait.max.ms": "10",
]

func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data("StreamThroughput: \(message)\n".utf8))
    exit(1)
}

func seconds(_ duration: Duration) -> Double {
    Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
}

/// CPU seconds used by the whole process so far (every thread: processor, librdkafka, broker).
func cpuSeconds() -> Double {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    return Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6
}

func configuration(_ cluster: EmbeddedKafkaCluster, guarantee: RuntimeConfiguration.Guarantee) -> RuntimeConfiguration {
    var kafka = KafkaConfiguration(bootstrapServers: cluster.bootstrapServers, properties: consumerProperties)
    kafka.sessionTimeout = .seconds(6)
    kafka.heartbeatInterval = .milliseconds(500)
    var configuration = RuntimeConfiguration(applicationID: "bench", instanceID: "bench-1", kafka: kafka, inputTopics: ["events"])
    configuration.guarantee = guarantee
    return configuration
}

/// Produces the events keyed by customer id and checks that the broker kept every one.
func preload(_ records: [(key: [UInt8], value: [UInt8])], into cluster: EmbeddedKafkaCluster) throws {
    let producer = try KafkaProducer(configuration: KafkaConfiguration(bootstrapServers: cluster.bootstrapServers, properties: ["linger.ms": "5"]))
    for record in records { try producer.send(ProducerRecord(topic: "events", key: record.key, value: record.value)) }
    let failed = try producer.flush(timeout: .seconds(120)).count { (try? $0.result.get()) == nil }
    if failed > 0 { fail("\(failed) events were not delivered") }
    var settings = KafkaConfiguration(bootstrapServers: cluster.bootstrapServers)
    settings.groupID = "bench-check"
    let checker = try KafkaConsumer(configuration: settings)
    var total: Int64 = 0
    for partition in 0..<Int32(partitions) {
        let (low, high) = try checker.watermarks(of: TopicPartition("events", partition))
        if low != 0 { fail("events[\(partition)] dropped \(low) records: over the embedded broker's retention") }
        total += high
    }
    if total != records.count { fail("the broker holds \(total) of \(records.count) events") }
}

/// Runs a processor over the preloaded events; returns the seconds from its first record to the
/// commit of the last input offset.
func processAll(_ count: Int, program: Program, guarantee: RuntimeConfiguration.Guarantee, records: [(key: [UInt8], value: [UInt8])]) async throws -> (Double, Double, StreamProcessor.Statistics) {
    let cluster = try EmbeddedKafkaCluster(brokers: 1)
    var settings = configuration(cluster, guarantee: guarantee)
    settings.clock = .streamTime
    try cluster.createTopics(for: settings, inputPartitions: partitions)
    try preload(records, into: cluster)
    let processor = StreamProcessor(configuration: settings, program: program)
    let running = Task { try await processor.run() }
    while processor.statistics.recordsIn == 0 { try await Task.sleep(for: .milliseconds(5)) }
    let started = ContinuousClock.now
    let cpuStarted = cpuSeconds()
    while processor.statistics.committedOffsets < count { try await Task.sleep(for: .milliseconds(5)) }
    let elapsed = seconds(ContinuousClock.now - started)
    let cpu = cpuSeconds() - cpuStarted
    processor.stop()
    try await running.value
    cluster.stop()
    return (elapsed, cpu, processor.statistics)
}

/// The ceiling: one consumer reading every event and one producer writing each back out.
func pipeAll(_ count: Int, records: [(key: [UInt8], value: [UInt8])]) async throws -> Double {
    let cluster = try EmbeddedKafkaCluster(brokers: 1)
    try cluster.createTopic("events", partitions: partitions)
    try cluster.createTopic("piped", partitions: partitions)
    try preload(records, into: cluster)
    return try await KafkaThread(name: "ceiling").run {
        var settings = KafkaConfiguration(bootstrapServers: cluster.bootstrapServers, properties: consumerProperties)
        settings.groupID = "bench-ceiling"
        settings.autoOffsetReset = .earliest
        let consumer = try KafkaConsumer(configuration: settings)
        let producer = try KafkaProducer(configuration: KafkaConfiguration(bootstrapServers: cluster.bootstrapServers, properties: ["linger.ms": "5"]))
        try consumer.subscribe(to: ["events"])
        var read = 0
        var started: ContinuousClock.Instant?
        while read < count {
            let batch = try consumer.poll(maxRecords: 2_000, timeout: .milliseconds(100))
            if started == nil, !batch.isEmpty { started = .now }
            for record in batch { try producer.send(ProducerRecord(topic: "piped", key: record.key, value: record.value)) }
            read += batch.count
            _ = producer.deliveries()
        }
        let failed = try producer.flush(timeout: .seconds(60)).count { (try? $0.result.get()) == nil }
        if failed > 0 { fail("\(failed) piped records were not delivered") }
        let elapsed = seconds(ContinuousClock.now - started!)
        try consumer.close()
        cluster.stop()
        return elapsed
    }
}

/// Produces `rate` events a second for `duration` seconds, one new customer each, and measures
/// each decision's latency from its event's production to a read_committed reader.
func latencies(rate: Int, duration: Int) async throws -> [Double] {
    let program = try ProgramLoader.load([(name: "latency.yaml", text: """
        workflows:
          - id: pricing-nudge
            version: 1
            trigger: { event: "Pricing Viewed", count: 1, within: 1h }
            steps:
              - send: { channel: in_app, template: plan-comparison }
        """)])
    let cluster = try EmbeddedKafkaCluster(brokers: 1)
    let settings = configuration(cluster, guarantee: .exactlyOnce)
    try cluster.createTopics(for: settings, inputPartitions: partitions)
    let processor = StreamProcessor(configuration: settings, program: program)
    let running = Task { try await processor.run() }

    let total = rate * duration
    let measured = Mutex<[Double]>([])
    let reading = Task {
        try await KafkaThread(name: "reader").run {
            var readerSettings = KafkaConfiguration(bootstrapServers: cluster.bootstrapServers, properties: ["fetch.wait.max.ms": "10"])
            readerSettings.groupID = "bench-reader"
            readerSettings.isolationLevel = .readCommitted
            let reader = try KafkaConsumer(configuration: readerSettings)
            try reader.assign([TopicPartitionOffset(settings.topics.inApp, 0, .beginning)])
            var seen = 0
            let deadline = ContinuousClock.now + .seconds(duration + 60)
            while seen < total, ContinuousClock.now < deadline {
                let batch = try reader.poll(maxRecords: 5_000, timeout: .milliseconds(20))
                let now = Int64(Date().timeIntervalSince1970 * 1000)
                for record in batch {
                    guard let object = (try? JSONReader.parse(String(decoding: record.value ?? [], as: UTF8.self)))?.object,
                          let time = object["event_time"]?.string.flatMap(ISO8601.parse) else { continue }
                    measured.withLock { $0.append(Double(now - time.rawValue)) }
                }
                seen += batch.count
            }
        }
    }
    // The load starts once the processor holds its partitions: the group join is not latency.
    while processor.statistics.assignedPartitions < partitions { try await Task.sleep(for: .milliseconds(100)) }
    try await KafkaThread(name: "load").run {
        let producer = try KafkaProducer(configuration: KafkaConfiguration(bootstrapServers: cluster.bootstrapServers, properties: ["linger.ms": "1"]))
        let slice = rate / 100
        var next = ContinuousClock.now
        for start in stride(from: 0, to: total, by: slice) {
            let now = ISO8601.format(Timestamp(milliseconds: Int64(Date().timeIntervalSince1970 * 1000)))
            for index in start..<min(total, start + slice) {
                let value = #"{"type":"track","userId":"visitor-\#(index)","messageId":"m-\#(index)","event":"Pricing Viewed","timestamp":"\#(now)"}"#
                try producer.send(ProducerRecord(topic: "events", key: Array("visitor-\(index)".utf8), value: Array(value.utf8)))
            }
            _ = producer.deliveries()
            next += .milliseconds(10)
            let wait = next - ContinuousClock.now
            if wait > .zero { Thread.sleep(forTimeInterval: seconds(wait)) }
        }
        _ = try producer.flush(timeout: .seconds(30))
    }
    try await reading.value
    processor.stop()
    try await running.value
    cluster.stop()
    return measured.withLock { $0 }
}

func percentile(_ sorted: [Double], _ p: Double) -> Double {
    sorted[min(sorted.count - 1, Int(Double(sorted.count) * p))]
}

let names = try FileManager.default.contentsOfDirectory(atPath: "deploy/workflows").filter { $0.hasSuffix(".yaml") }.sorted()
let program = try ProgramLoader.load(names.map { (name: $0, text: try String(contentsOfFile: "deploy/workflows/\($0)", encoding: .utf8)) })
let decoder = EventDecoder()
let records = PopulationGenerator(customers: customerCount, events: eventCount, start: ISO8601.parse("2026-03-01T00:00:00Z")!).records().map { line in
    (key: Array(((try? decoder.decode(line))?.customerID ?? "").utf8), value: Array(line.utf8))
}
let bytes = records.reduce(0) { $0 + $1.value.count }
print("events: \(records.count) over \(customerCount) customers, \(bytes / records.count) bytes on average, \(partitions) partitions")

let ceiling = try await pipeAll(records.count, records: records)
print(String(format: "ceiling (consume + produce, no engine):  %9.0f events/s  (%.2f s)", Double(records.count) / ceiling, ceiling))
for guarantee in [RuntimeConfiguration.Guarantee.exactlyOnce, .atLeastOnce] {
    let (elapsed, cpu, statistics) = try await processAll(records.count, program: program, guarantee: guarantee, records: records)
    let rate = Double(records.count) / elapsed
    print(String(format: "processor, %@: %9.0f events/s  (%.2f s, %.0f%% of the ceiling; %d transactions, %d outputs; %.1f CPU seconds in all threads)",
                 guarantee.rawValue.padding(toLength: 13, withPad: " ", startingAt: 0), rate, elapsed, 100 * rate / (Double(records.count) / ceiling),
                 statistics.transactionsCommitted, statistics.outputs, cpu))
}
let measured = try await latencies(rate: latencyRate, duration: latencySeconds).sorted()
if measured.count < latencyRate * latencySeconds { fail("only \(measured.count) of \(latencyRate * latencySeconds) decisions were read") }
print(String(format: "latency at %d events/s, exactly-once, 100 ms commits: p50 %.0f ms, p99 %.0f ms, max %.0f ms (%d decisions)",
             latencyRate, percentile(measured, 0.5), percentile(measured, 0.99), measured.last!, measured.count))
