import Kafka
import Testing

@Suite("Errors")
struct ErrorTests {
    @Test func unknownPropertyIsRefusedWithLibrdkafkasMessage() {
        let error = #expect(throws: KafkaError.self) {
            try KafkaProducer(configuration: configuration { $0.properties["no.such.property"] = "1" })
        }
        #expect(error?.message == "No such configuration property: \"no.such.property\"")
        #expect(error?.operation == "set configuration property \"no.such.property\"")
        #expect(error?.kind == .permanent)
    }

    @Test func invalidValueIsRefusedWithLibrdkafkasMessage() {
        let error = #expect(throws: KafkaError.self) {
            try KafkaConsumer(configuration: configuration { $0.properties["session.timeout.ms"] = "soon" })
        }
        #expect(error?.message == "Invalid value for configuration property \"session.timeout.ms\"")
    }

    @Test func aConsumerWithoutAGroupIsRefused() {
        let error = #expect(throws: KafkaError.self) { try KafkaConsumer(configuration: configuration()) }
        #expect(error?.code == .invalidArgument)
        #expect(error?.message == "no group.id: librdkafka's consumer needs one, even to read assigned partitions only")
    }

    @Test func conflictingPropertiesAreRefusedWhenTheClientIsCreated() {
        let error = #expect(throws: KafkaError.self) {
            try KafkaProducer(
                configuration: configuration {
                    $0.transactionalID = "t"
                    $0.enableIdempotence = false
                })
        }
        #expect(error?.operation == "create producer client")
        #expect(error?.message == "`transactional.id` requires `enable.idempotence=true`")
    }

    @Test func validationChecksWithoutConnecting() throws {
        try configuration { $0.properties["linger.ms"] = "20" }.validate(for: .producer)
        #expect(throws: KafkaError.self) {
            try configuration { $0.properties["linger.ms"] = "-3" }.validate(for: .producer)
        }
    }

    @Test func deliveryFailureComesBackAsAnErrorReport() async throws {
        let cluster = try isolatedCluster()
        let topic = try makeTopic("delivery-failure", partitions: 1, on: cluster)
        let reports = try await blocking {
            let producer = try KafkaProducer(configuration: configuration(on: cluster))
            try cluster.failNextRequests(.produce, with: [.topicAuthorizationFailed])
            try producer.send(ProducerRecord(topic: topic, key: nil, value: bytes("refused")))
            return try producer.flush(timeout: .seconds(10))
        }
        #expect(reports.count == 1)
        #expect(throws: KafkaError.self) { try reports.first?.result.get() }
        if case .failure(let error) = reports.first?.result {
            #expect(error.code == .topicAuthorizationFailed)
            #expect(error.operation == "deliver to \(topic)[0]")
        }
    }

    @Test func recordThatOutlivesItsDeliveryTimeoutFailsWithTimedOut() async throws {
        let cluster = try isolatedCluster()
        let topic = try makeTopic("delivery-timeout", partitions: 1, on: cluster)
        let reports = try await blocking {
            let producer = try KafkaProducer(
                configuration: configuration(on: cluster) {
                    $0.deliveryTimeout = .milliseconds(500)
                    $0.properties["request.timeout.ms"] = "400"
                })
            // Every produce request is refused as retriable until the record's time is up.
            try cluster.failNextRequests(.produce, with: Array(repeating: .notEnoughReplicas, count: 10_000))
            try producer.send(ProducerRecord(topic: topic, key: nil, value: bytes("late")))
            return try producer.flush(timeout: .seconds(10))
        }
        if case .failure(let error) = reports.first?.result {
            #expect(error.code == .messageTimedOut)
        } else {
            Issue.record("expected a failed delivery, got \(reports)")
        }
    }

    @Test func errorDescriptionKeepsCodeTextAndAdvice() {
        let error = KafkaError(code: .producerFenced, message: "fenced by epoch 3", operation: "commit transaction")
        #expect(error.kind == .fatal)
        #expect(
            error.description
                == "commit transaction failed: fenced by epoch 3 [PRODUCER_FENCED (90), fatal]; close this client and create a new one"
        )
    }
}
