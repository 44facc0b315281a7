import Kafka
import Testing

@Suite("Transactions")
struct TransactionTests {
    private func transactionalProducer(on cluster: EmbeddedKafkaCluster = sharedCluster) throws -> KafkaProducer {
        try KafkaProducer(configuration: configuration(on: cluster) { $0.transactionalID = uniqueName("txn") })
    }

    /// librdkafka 2.0.2's mock accepts TxnOffsetCommit but never stores its offsets, so on this
    /// broker a committed transaction's offsets are recorded by a plain commit made only after
    /// `commitTransaction` returns. What the test pins down is the other half: offsets sent in a
    /// transaction are not the group's while it is open, and never after it aborts.
    @Test func offsetsSentInATransactionCountOnlyOnceItCommits() async throws {
        let input = try makeTopic("txn-input", partitions: 1)
        let output = try makeTopic("txn-output", partitions: 1)
        let group = uniqueName("txn-group")
        try await blocking { try produce((0..<10).map { ProducerRecord(topic: input, key: nil, value: bytes("\($0)")) }) }

        let (whileOpen, afterAbort, afterCommit) = try await blocking {
            let consumer = try KafkaConsumer(configuration: configuration(group: group))
            try consumer.subscribe(to: [input])
            let records = try poll(consumer, count: 10)
            let producer = try transactionalProducer()
            try producer.initTransactions()
            let partition = [TopicPartition(input, 0)]

            try producer.beginTransaction()
            try producer.send(ProducerRecord(topic: output, key: nil, value: bytes("aborted")))
            try producer.sendOffsets([records[4].nextOffset], group: try consumer.groupMetadata())
            let whileOpen = try consumer.committed(partition)
            try producer.abortTransaction()
            let afterAbort = try consumer.committed(partition)

            try producer.beginTransaction()
            try producer.send(ProducerRecord(topic: output, key: nil, value: bytes("committed")))
            try producer.sendOffsets([records[9].nextOffset], group: try consumer.groupMetadata())
            try producer.commitTransaction()
            try consumer.commit([records[9].nextOffset])
            let afterCommit = try consumer.committed(partition)
            try consumer.close()
            return (whileOpen, afterAbort, afterCommit)
        }
        #expect(whileOpen == [TopicPartitionOffset(input, 0, .invalid)])
        #expect(afterAbort == [TopicPartitionOffset(input, 0, .invalid)])
        #expect(afterCommit == [TopicPartitionOffset(input, 0, 10)])
    }

    @Test func offsetsTravelInsideTheTransaction() async throws {
        let cluster = try isolatedCluster()
        let input = try makeTopic("txn-offsets", partitions: 1, on: cluster)
        let group = uniqueName("txn-offsets-group")
        let error = try await blocking {
            let consumer = try KafkaConsumer(configuration: configuration(group: group, on: cluster))
            let producer = try transactionalProducer(on: cluster)
            try producer.initTransactions()
            try producer.beginTransaction()
            try cluster.failNextRequests(.transactionOffsetCommit, with: [.topicAuthorizationFailed])
            return #expect(throws: KafkaError.self) {
                try producer.sendOffsets([TopicPartitionOffset(input, 0, 1)], group: try consumer.groupMetadata())
                try producer.commitTransaction(timeout: .seconds(10))
            }
        }
        #expect(error?.kind == .abortable, "\(String(describing: error))")
    }

    @Test func committedRecordsReachReaders() async throws {
        let output = try makeTopic("txn-visible", partitions: 1)
        let values = try await blocking {
            let producer = try transactionalProducer()
            try producer.initTransactions()
            try producer.beginTransaction()
            try producer.send(ProducerRecord(topic: output, key: bytes("c1"), value: bytes("one")))
            try producer.send(ProducerRecord(topic: output, key: bytes("c1"), value: bytes("two")))
            try producer.commitTransaction()
            let reports = producer.deliveries()
            #expect(reports.count == 2)
            #expect(reports.allSatisfy { (try? $0.result.get()) != nil })
            return try poll(try reader(of: output, partitions: 1, isolation: .readCommitted), count: 2).map { text($0.value) }
        }
        #expect(values == ["one", "two"])
    }

    @Test(arguments: [
        (KafkaRequest.endTransaction, KafkaError.Code.producerFenced, KafkaError.Code.fenced, KafkaError.Kind.fatal),
        (.endTransaction, .invalidProducerEpoch, .fenced, .fatal),
        (.produce, .topicAuthorizationFailed, .topicAuthorizationFailed, .abortable),
        (.addPartitionsToTransaction, .topicAuthorizationFailed, .topicAuthorizationFailed, .abortable),
    ])
    func injectedErrorSurfacesWithItsClass(
        request: KafkaRequest, injected: KafkaError.Code, surfaced: KafkaError.Code, expected: KafkaError.Kind
    ) async throws {
        let cluster = try isolatedCluster()
        let output = try makeTopic("txn-error", partitions: 1, on: cluster)
        let error = try await blocking {
            let producer = try transactionalProducer(on: cluster)
            try producer.initTransactions()
            try producer.beginTransaction()
            try cluster.failNextRequests(request, with: [injected])
            try producer.send(ProducerRecord(topic: output, key: nil, value: bytes("x")))
            return #expect(throws: KafkaError.self) { try producer.commitTransaction(timeout: .seconds(10)) }
        }
        #expect(error?.kind == expected, "\(String(describing: error))")
        #expect(error?.code == surfaced, "\(String(describing: error))")
    }

    @Test func retriableErrorThatOutlastsTheTimeoutAsksForARetry() async throws {
        let cluster = try isolatedCluster()
        let output = try makeTopic("txn-timeout", partitions: 1, on: cluster)
        let (error, values) = try await blocking {
            let producer = try transactionalProducer(on: cluster)
            try producer.initTransactions()
            try producer.beginTransaction()
            try producer.send(ProducerRecord(topic: output, key: nil, value: bytes("x")))
            try cluster.failNextRequests(.endTransaction, with: Array(repeating: .concurrentTransactions, count: 1_000))
            let error = #expect(throws: KafkaError.self) { try producer.commitTransaction(timeout: .seconds(1)) }
            try cluster.clearRequestErrors(.endTransaction)
            try producer.commitTransaction()
            return (error, try poll(try reader(of: output, partitions: 1, on: cluster), count: 1).map { text($0.value) })
        }
        #expect(error?.kind == .retriable, "\(String(describing: error))")
        #expect(values == ["x"])
    }

    @Test func retriableErrorOnEndTransactionIsRetriedUntilItCommits() async throws {
        let cluster = try isolatedCluster()
        let output = try makeTopic("txn-retry", partitions: 1, on: cluster)
        try await blocking {
            let producer = try transactionalProducer(on: cluster)
            try producer.initTransactions()
            try producer.beginTransaction()
            try producer.send(ProducerRecord(topic: output, key: nil, value: bytes("x")))
            try cluster.failNextRequests(.endTransaction, with: [.coordinatorNotAvailable, .notCoordinator])
            try producer.commitTransaction()
        }
        let values = try await blocking {
            try poll(try reader(of: output, partitions: 1, on: cluster), count: 1).map { text($0.value) }
        }
        #expect(values == ["x"])
    }
}
