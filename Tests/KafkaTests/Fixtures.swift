import Kafka
import Synchronization
import Testing

/// One embedded cluster for the whole test run: starting brokers is cheap, but group joins are
/// slow, so suites share the cluster and keep apart by topic and group names.
let sharedCluster: EmbeddedKafkaCluster = {
    do { return try EmbeddedKafkaCluster(brokers: 3) } catch { fatalError("embedded cluster: \(error)") }
}()

private let nameCounter = Atomic<Int>(0)

/// A topic or group name no other test uses.
func uniqueName(_ prefix: String) -> String {
    "\(prefix)-\(nameCounter.add(1, ordering: .relaxed).newValue)"
}

/// Creates a fresh topic and returns its name.
func makeTopic(_ prefix: String, partitions: Int, on cluster: EmbeddedKafkaCluster = sharedCluster) throws -> String {
    let name = uniqueName(prefix)
    try cluster.createTopic(name, partitions: partitions)
    return name
}

/// A cluster of its own, for a test that injects errors: injected errors hit every client of a cluster.
func isolatedCluster() throws -> EmbeddedKafkaCluster {
    try EmbeddedKafkaCluster(brokers: 1)
}

func configuration(
    group: String? = nil,
    on cluster: EmbeddedKafkaCluster = sharedCluster,
    _ adjust: (inout KafkaConfiguration) -> Void = { _ in }
) -> KafkaConfiguration {
    var configuration = KafkaConfiguration(bootstrapServers: cluster.bootstrapServers)
    configuration.groupID = group
    configuration.autoOffsetReset = .earliest
    configuration.enableAutoCommit = false
    // The mock coordinator holds a rebalance for session.timeout.ms - 1 s after a member leaves.
    configuration.sessionTimeout = .seconds(6)
    configuration.heartbeatInterval = .milliseconds(500)
    adjust(&configuration)
    return configuration
}

/// Runs blocking Kafka calls on a thread of their own, off the cooperative pool.
func blocking<Result: Sendable>(_ body: @escaping @Sendable () throws -> Result) async throws -> Result {
    try await KafkaThread(name: "test").run(body)
}

func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }

func text(_ bytes: [UInt8]?) -> String? { bytes.map { String(decoding: $0, as: UTF8.self) } }

/// Produces records and waits for every delivery report, failing on any failed delivery.
func produce(_ records: [ProducerRecord], configuration: KafkaConfiguration = configuration()) throws {
    let producer = try KafkaProducer(configuration: configuration)
    for record in records { try producer.send(record) }
    let reports = try producer.flush(timeout: .seconds(30))
    #expect(reports.count == records.count)
    for report in reports {
        if case .failure(let error) = report.result { Issue.record("delivery failed: \(error)") }
    }
}

/// Polls until `count` records have arrived or `deadline` passes.
func poll(_ consumer: KafkaConsumer, count: Int, within deadline: Duration = .seconds(30)) throws -> [ConsumerRecord] {
    let clock = ContinuousClock()
    let end = clock.now + deadline
    var records: [ConsumerRecord] = []
    while records.count < count && clock.now < end {
        records += try consumer.poll(maxRecords: 10_000, timeout: .milliseconds(200))
    }
    return records
}

/// Polls until `condition` holds or `deadline` passes; returns whether it held.
func poll(_ consumer: KafkaConsumer, until condition: () -> Bool, within deadline: Duration = .seconds(30)) throws
    -> Bool
{
    let clock = ContinuousClock()
    let end = clock.now + deadline
    while !condition() {
        guard clock.now < end else { return false }
        _ = try consumer.poll(timeout: .milliseconds(100))
    }
    return true
}

/// A reader of whole partitions without a group, starting at the beginning.
func reader(
    of topic: String,
    partitions: Int,
    on cluster: EmbeddedKafkaCluster = sharedCluster,
    group: String = uniqueName("reader"),
    isolation: KafkaConfiguration.IsolationLevel? = nil
) throws -> KafkaConsumer {
    let consumer = try KafkaConsumer(
        configuration: configuration(group: group, on: cluster) { $0.isolationLevel = isolation })
    try consumer.assign((0..<Int32(partitions)).map { TopicPartitionOffset(topic, $0, .beginning) })
    return consumer
}
