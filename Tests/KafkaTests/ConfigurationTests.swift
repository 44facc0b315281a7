import Kafka
import Synchronization
import Testing

@Suite("Configuration")
struct ConfigurationTests {
    let shared = KafkaConfiguration(
        bootstrapServers: "kafka:9092",
        properties: ["session.timeout.ms": "6000", "linger.ms": "5", "socket.timeout.ms": "30000", "auto.offset.reset": "earliest"])

    func keys(for role: ClientRole) -> [String] {
        shared.librdkafkaProperties(for: role).map(\.key).filter { shared.properties[$0] != nil }
    }

    @Test func eachClientGetsTheSharedPropertiesOfItsKind() {
        #expect(keys(for: .consumer) == ["auto.offset.reset", "session.timeout.ms", "socket.timeout.ms"])
        #expect(keys(for: .producer) == ["linger.ms", "socket.timeout.ms"])
    }

    @Test func aProducerGivenConsumerPropertiesLogsNoWarning() throws {
        let lines = Mutex<[ClientLogLine]>([])
        let events = ClientEvents(onLog: { line in lines.withLock { $0.append(line) } })
        _ = try KafkaProducer(configuration: shared, events: events)
        var consumer = shared
        consumer.groupID = "settings-group"
        _ = try KafkaConsumer(configuration: consumer, events: events)
        #expect(lines.withLock { $0.filter { $0.facility == "CONFWARN" }.map(\.message) } == [])
    }
}
