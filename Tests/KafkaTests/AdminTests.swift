import Kafka
import Testing

@Suite("Admin and the embedded cluster")
struct AdminTests {
    @Test func listsAndDescribesTopicsCreatedOnTheEmbeddedCluster() throws {
        let topic = try makeTopic("described", partitions: 4)
        let admin = try KafkaAdmin(configuration: configuration())

        #expect(try admin.listTopics().contains(topic))
        let description = try #require(try admin.describeTopics([topic]).first)
        #expect(description.name == topic)
        #expect(description.partitions.map(\.id) == [0, 1, 2, 3])
        #expect(description.partitions.allSatisfy { $0.replicas.count == 3 && $0.inSyncReplicas.count == 3 })
        #expect(description.partitions.allSatisfy { $0.replicas.contains($0.leader) })
    }

    @Test func describingAMissingTopicNamesIt() throws {
        let admin = try KafkaAdmin(configuration: configuration())
        let error = #expect(throws: KafkaError.self) { try admin.describeTopics(["never-created"]) }
        #expect(error?.code == .unknownTopicOrPartition)
        #expect(error?.message == "topic \"never-created\" does not exist")
    }

    /// The mock has no controller to answer CreateTopics; the call must end with librdkafka's
    /// timeout, not hang.
    @Test func createTopicsReportsThatTheEmbeddedBrokerDoesNotAnswerIt() throws {
        let admin = try KafkaAdmin(configuration: configuration())
        let error = #expect(throws: KafkaError.self) {
            try admin.createTopics(
                [NewTopic(name: uniqueName("admin-created"), partitions: 3, configs: ["cleanup.policy": "compact"])],
                timeout: .seconds(2))
        }
        #expect(error?.code == .timedOut)
        #expect(error?.message == "Failed while waiting for controller: Local: Timed out")
        #expect(error?.kind == .retriable)
    }
}
