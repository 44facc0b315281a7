import Kafka
import Testing
@testable import UpshiftRuntime

@Suite("Client settings")
struct ClientSettingsTests {
    func properties(_ settings: KafkaConfiguration, _ role: ClientRole) -> [String: String] {
        Dictionary(settings.librdkafkaProperties(for: role).map { ($0.key, $0.value) }) { $1 }
    }

    func configuration(_ adjust: (inout RuntimeConfiguration) -> Void = { _ in }) -> RuntimeConfiguration {
        var configuration = RuntimeConfiguration(
            applicationID: "upsell", instanceID: "upshift-2", kafka: KafkaConfiguration(bootstrapServers: "kafka:9092"), inputTopics: ["events"])
        adjust(&configuration)
        return configuration
    }

    @Test func staticMembershipUsesTheInstanceIDAsGroupInstanceID() {
        let consumer = properties(configuration { $0.staticMembership = true }.consumerSettings, .consumer)
        #expect(consumer["group.id"] == "upsell")
        #expect(consumer["group.instance.id"] == "upshift-2")
        #expect(properties(configuration().consumerSettings, .consumer)["group.instance.id"] == nil)
    }

    @Test func theConsumerReadsCommittedAndNeverCommitsOnItsOwn() {
        let consumer = properties(configuration().consumerSettings, .consumer)
        #expect(consumer["isolation.level"] == "read_committed")
        #expect(consumer["enable.auto.commit"] == "false")
        #expect(consumer["enable.auto.offset.store"] == "false")
        #expect(consumer["auto.offset.reset"] == "earliest")
    }

    @Test func exactlyOnceProducesWithATransactionalIDStableAcrossRestarts() {
        #expect(properties(configuration().producerSettings, .producer)["transactional.id"] == "upsell-upshift-2")
        #expect(properties(configuration { $0.guarantee = .atLeastOnce }.producerSettings, .producer)["transactional.id"] == nil)
    }
}
