import Foundation
import Kafka
import Synchronization
import Testing

@Suite("KafkaThread")
struct KafkaThreadTests {
    /// Compared by OS thread: Foundation's `Thread.current.name` read inside a job sometimes gave
    /// the name inherited from the creating thread under load.
    @Test func runsJobsOnItsOwnThreadInSubmissionOrder() async throws {
        let thread = KafkaThread(name: "kafka-order")
        let other = KafkaThread(name: "kafka-other")
        let order = Mutex<[Int]>([])
        async let first = thread.run {
            Thread.sleep(forTimeInterval: 0.05)
            order.withLock { $0.append(1) }
            return pthread_self()
        }
        try await Task.sleep(for: .milliseconds(10))
        let second = await thread.run {
            order.withLock { $0.append(2) }
            return pthread_self()
        }
        let elsewhere = await other.run { pthread_self() }
        #expect(await first == second)
        #expect(elsewhere != second)
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
