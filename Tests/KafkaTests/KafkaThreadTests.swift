import Foundation
import Kafka
import Synchronization
import Testing

@Suite("KafkaThread")
struct KafkaThreadTests {
    @Test func runsJobsOnItsOwnThreadInSubmissionOrder() async throws {
        let thread = KafkaThread(name: "kafka-order")
        let order = Mutex<[Int]>([])
        async let first: String? = thread.run {
            Thread.sleep(forTimeInterval: 0.05)
            order.withLock { $0.append(1) }
            return Thread.current.name
        }
        try await Task.sleep(for: .milliseconds(10))
        let second: String? = await thread.run {
            order.withLock { $0.append(2) }
            return Thread.current.name
        }
        #expect(await first == "kafka-order")
        #expect(second == "kafka-order")
        #expect(order.withLock { $0 } == [1, 2])
    }

    @Test func handsBackTheJobsTypedError() async {
        let thread = KafkaThread()
        let failure = KafkaError(code: .timedOut, message: "slow", operation: "test")
        await #expect(throws: failure) {
            try await thread.run { () throws(KafkaError) -> Int in throw failure }
        }
    }
}
