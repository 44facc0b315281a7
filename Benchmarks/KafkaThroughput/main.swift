// Produce and consume throughput of the Swift Kafka layer beside kcat, on one embedded broker.
//
// Both sides send the same records (an 8-byte key, a 100-byte value) with the same librdkafka
// properties to topics of 32 partitions, and read them back from the beginning. Keys spread the
// records evenly, which keeps each partition under the embedded broker's 5 MB retention (records
// without a key go to one "sticky" partition for 10 ms at a time, which overfills some); the
// benchmark checks that no record was dropped before it reads. Wall time includes creating the client
// and waiting for the last delivery report or record, for kcat as for Swift.
//
// The machine's two cores are shared by the broker, the client and kcat, so single runs vary by
// tens of percent: each side runs several rounds, alternating which goes first, on fresh topics,
// and the median round is reported, with the best round beside it.
//
//   swift run -c release KafkaThroughput [records] [value-bytes] [rounds]

import Foundation
import Kafka

let recordCount = CommandLine.arguments.count > 1 ? Int(CommandLine.arguments[1])! : 1_000_000
let valueSize = CommandLine.arguments.count > 2 ? Int(CommandLine.arguments[2])! : 100
let rounds = CommandLine.arguments.count > 3 ? Int(CommandLine.arguments[3])! : 7
let partitions = 32
/// Applied to both producers, so that neither side is measured with different batching.
let producerProperties = ["linger.ms": "5", "enable.idempotence": "true"]
/// kcat -C uses librdkafka's legacy per-partition consumer, whose prefetch limits
/// (`queued.min.messages`, 100,000 records, and `queued.max.messages.kbytes`, 64 MB) apply to each
/// partition; the Swift consumer is librdkafka's high-level consumer, where they apply to all
/// partitions together. These give the Swift side the same limits per partition (within
/// librdkafka's caps), so that neither side pauses its fetches on a full prefetch queue.
let consumerProperties = [
    "queued.min.messages": String(min(100_000 * partitions, 10_000_000)),
    "queued.max.messages.kbytes": String(min(64 * 1024 * partitions, 2_097_151)),
]

struct Measurement {
    var name: String
    var seconds: Double
    var records: Int

    var recordsPerSecond: Double { Double(records) / seconds }
    var megabytesPerSecond: Double { recordsPerSecond * Double(valueSize) / 1_000_000 }
}

func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data("KafkaThroughput: \(message)\n".utf8))
    exit(1)
}

func measure(_ name: String, records: Int, _ body: () throws -> Void) rethrows -> Measurement {
    let start = ContinuousClock.now
    try body()
    let elapsed = ContinuousClock.now - start
    let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
    return Measurement(name: name, seconds: seconds, records: records)
}

/// The records, made before the clock starts, as kcat's input file is written before it runs.
func swiftRecords(topic: String) -> [ProducerRecord] {
    let value = [UInt8](repeating: UInt8(ascii: "x"), count: valueSize)
    return (0..<recordCount).map { ProducerRecord(topic: topic, key: key($0), value: value) }
}

func swiftProduce(_ records: [ProducerRecord], bootstrap: String) throws {
    let configuration = KafkaConfiguration(bootstrapServers: bootstrap, properties: producerProperties)
    let producer = try KafkaProducer(configuration: configuration)
    var failures = 0
    var delivered = 0
    for (index, record) in records.enumerated() {
        try producer.send(record)
        if index % 10_000 == 0 {
            for report in producer.deliveries() {
                if case .failure = report.result { failures += 1 } else { delivered += 1 }
            }
        }
    }
    for report in try producer.flush(timeout: .seconds(120)) {
        if case .failure = report.result { failures += 1 } else { delivered += 1 }
    }
    if failures > 0 || delivered != recordCount { fail("\(failures) deliveries failed, \(delivered) delivered") }
}

/// The 8-byte key of record `index`.
func key(_ index: Int) -> [UInt8] {
    let digits = Array(String(index).utf8)
    return [UInt8](repeating: UInt8(ascii: "0"), count: 8 - digits.count) + digits
}

/// Fails unless every partition still holds all it was given from offset 0.
func checkNothingWasDropped(bootstrap: String, topic: String) throws {
    var configuration = KafkaConfiguration(bootstrapServers: bootstrap)
    configuration.groupID = "bench-check"
    let consumer = try KafkaConsumer(configuration: configuration)
    var total: Int64 = 0
    for partition in 0..<Int32(partitions) {
        let (low, high) = try consumer.watermarks(of: TopicPartition(topic, partition))
        if low != 0 { fail("\(topic)[\(partition)] dropped \(low) records: over the embedded broker's retention") }
        total += high
    }
    if total != recordCount { fail("\(topic) holds \(total) records, expected \(recordCount)") }
}

func swiftConsume(bootstrap: String, topic: String) throws {
    var configuration = KafkaConfiguration(bootstrapServers: bootstrap, properties: consumerProperties)
    configuration.groupID = "bench-reader"
    configuration.enableAutoCommit = false
    let consumer = try KafkaConsumer(configuration: configuration)
    try consumer.assign((0..<Int32(partitions)).map { TopicPartitionOffset(topic, $0, .beginning) })
    var received = 0
    var bytes = 0
    while received < recordCount {
        let records = try consumer.poll(maxRecords: 10_000, timeout: .seconds(10))
        if records.isEmpty { fail("swift consumer stalled after \(received) records") }
        received += records.count
        for record in records { bytes += record.value?.count ?? 0 }
    }
    if received != recordCount || bytes != recordCount * valueSize {
        fail("swift consumer read \(received) records, \(bytes) bytes")
    }
}

func runKcat(_ arguments: [String], properties: [String: String] = [:], input: URL? = nil) throws {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/kcat")
    process.arguments = arguments + properties.sorted { $0.key < $1.key }.flatMap { ["-X", "\($0.key)=\($0.value)"] }
    process.standardOutput = FileHandle.nullDevice
    if let input { process.standardInput = try FileHandle(forReadingFrom: input) }
    try process.run()
    process.waitUntilExit()
    if process.terminationStatus != 0 { fail("kcat \(arguments) exited with \(process.terminationStatus)") }
}

let cluster = try EmbeddedKafkaCluster(brokers: 1)
let bootstrap = cluster.bootstrapServers

let lines = FileManager.default.temporaryDirectory.appendingPathComponent("kcat-bench-\(getpid()).txt")
let value = String(repeating: "x", count: valueSize)
var text = ""
text.reserveCapacity(recordCount * (valueSize + 10))
for index in 0..<recordCount {
    text += String(decoding: key(index), as: UTF8.self) + ":" + value + "\n"
}
try text.write(to: lines, atomically: false, encoding: .utf8)
text = ""
defer { try? FileManager.default.removeItem(at: lines) }

print("\(recordCount) records of \(valueSize) bytes, \(partitions) partitions, \(rounds) rounds, broker at \(bootstrap)")
var measurements: [String: [Measurement]] = [:]
for round in 1...rounds {
    let kcatTopic = "kcat-\(round)"
    let swiftTopic = "swift-\(round)"
    try cluster.createTopic(kcatTopic, partitions: partitions)
    try cluster.createTopic(swiftTopic, partitions: partitions)
    let records = swiftRecords(topic: swiftTopic)
    let produce = [
        {
            try measure("kcat produce", records: recordCount) {
                try runKcat(["-P", "-K", ":", "-b", bootstrap, "-t", kcatTopic], properties: producerProperties, input: lines)
            }
        },
        { try measure("swift produce", records: recordCount) { try swiftProduce(records, bootstrap: bootstrap) } },
    ]
    let consume = [
        {
            try measure("kcat consume", records: recordCount) {
                try runKcat(["-C", "-b", bootstrap, "-t", kcatTopic, "-o", "beginning", "-e", "-q"])
            }
        },
        { try measure("swift consume", records: recordCount) { try swiftConsume(bootstrap: bootstrap, topic: swiftTopic) } },
    ]
    let order = round % 2 == 1 ? [0, 1] : [1, 0]
    for index in order {
        let result = try produce[index]()
        measurements[result.name, default: []].append(result)
    }
    try checkNothingWasDropped(bootstrap: bootstrap, topic: kcatTopic)
    try checkNothingWasDropped(bootstrap: bootstrap, topic: swiftTopic)
    for index in order {
        let result = try consume[index]()
        measurements[result.name, default: []].append(result)
    }
}

let names = ["kcat produce", "swift produce", "kcat consume", "swift consume"]
let sortedRounds = names.map { name in measurements[name]!.sorted { $0.seconds < $1.seconds } }
let results = sortedRounds.map { $0[$0.count / 2] }
let best = sortedRounds.map { $0[0] }
for result in results {
    let all = measurements[result.name]!.map { String(format: "%.2f", $0.seconds) }.joined(separator: " ")
    print(
        result.name.padding(toLength: 14, withPad: " ", startingAt: 0),
        String(format: "%7.2f s %10.0f records/s %7.1f MB/s", result.seconds, result.recordsPerSecond, result.megabytesPerSecond),
        "  (rounds: \(all) s)")
}
func ratio(_ rounds: [Measurement], _ swift: Int, _ kcat: Int) -> Double {
    rounds[swift].recordsPerSecond / rounds[kcat].recordsPerSecond * 100
}
print(
    String(
        format: "swift/kcat, median rounds: produce %.0f%%, consume %.0f%%; best rounds: produce %.0f%%, consume %.0f%%",
        ratio(results, 1, 0), ratio(results, 3, 2), ratio(best, 1, 0), ratio(best, 3, 2)))
