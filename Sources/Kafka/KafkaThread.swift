import Foundation

/// A dedicated OS thread for blocking Kafka calls, so that a long poll, flush or transaction
/// commit never occupies one of Swift concurrency's few cooperative threads.
///
/// Jobs run one at a time, in the order they were submitted. An `async` caller awaits the result
/// with ``run(_:)``; the thread sleeps when there is nothing to do and ends when the last
/// reference to it goes away.
public final class KafkaThread: Sendable {
    /// The job queue, guarded by its condition's lock.
    private final class Jobs: @unchecked Sendable {
        private let condition = NSCondition()
        private var pending: [@Sendable () -> Void] = []
        private var open = true

        /// The next job, waiting for one; nil once closed and drained.
        func next() -> (@Sendable () -> Void)? {
            condition.lock()
            defer { condition.unlock() }
            while pending.isEmpty && open { condition.wait() }
            return pending.isEmpty ? nil : pending.removeFirst()
        }

        func submit(_ job: @escaping @Sendable () -> Void) {
            condition.lock()
            pending.append(job)
            condition.signal()
            condition.unlock()
        }

        func close() {
            condition.lock()
            open = false
            condition.signal()
            condition.unlock()
        }
    }

    private let jobs = Jobs()

    /// Starts the thread; `name` shows in debuggers and `top -H`.
    public init(name: String = "kafka") {
        let jobs = self.jobs
        let thread = Thread {
            // Named from inside: on Linux a name set before start() does not reach the OS thread.
            Thread.current.name = name
            while let job = jobs.next() { job() }
        }
        thread.start()
    }

    deinit { jobs.close() }

    /// Runs `body` on this thread and returns its result to the awaiting task.
    public func run<Result: Sendable, Failure: Error>(
        _ body: @escaping @Sendable () throws(Failure) -> Result
    ) async throws(Failure) -> Result {
        let outcome: Swift.Result<Result, Failure> = await withCheckedContinuation { continuation in
            jobs.submit {
                continuation.resume(returning: Swift.Result { () throws(Failure) -> Result in try body() })
            }
        }
        return try outcome.get()
    }
}
