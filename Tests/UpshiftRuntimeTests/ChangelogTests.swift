import Kafka
import Testing
import UpshiftCore
@testable import UpshiftRuntime

/// One changelog partition, written transaction by transaction as processors write it, and read
/// back as a restore reads it. A customer's state is told apart by its version (its latest event time).
private struct ChangelogPartition {
    private let program = Program()
    private var records: [ConsumerRecord] = []

    /// A transaction's state records: each customer at a version, or deleted (nil).
    mutating func write(_ session: String, _ transaction: Int, _ versions: [String: Int64?]) {
        for (customerID, version) in versions.sorted(by: { $0.key < $1.key }) {
            let state = version.map { version in
                var state = CustomerState(customerID: customerID, program: program)
                state.latestEventTime = Timestamp(milliseconds: version)
                return StateCodec.encode(state)
            }
            append(Changelog.stateRecord(
                topic: "changelog", partition: 0, customerID: customerID, state: state,
                headers: Changelog.headers(session: session, transaction: transaction)))
        }
    }

    /// A transaction's commit marker, with the input offset it reached.
    mutating func commit(_ session: String, _ transaction: Int, reaching offset: Int64, aborted: [Int] = []) {
        let commit = Changelog.Commit(transaction: transaction, aborted: aborted, offsets: [TopicPartition("events", 0): offset])
        append(Changelog.marker(topic: "changelog", partition: 0, session: session, commit: commit))
    }

    private mutating func append(_ record: ProducerRecord) {
        records.append(ConsumerRecord(
            topic: record.topic, partition: 0, offset: Int64(records.count), key: record.key, value: record.value, headers: record.headers))
    }

    /// Each restored customer's version, and the input offset the restore resumes from.
    func restore(knowingAborted aborted: [String: Set<Int>] = [:]) -> (versions: [String: Int64], offset: Int64?) {
        var restorer = Changelog.Restorer(program: program, aborted: aborted)
        records.forEach { restorer.read($0) }
        restorer.finish()
        #expect(restorer.unusable == 0)
        return (restorer.states.compactMapValues { $0.latestEventTime?.rawValue }, restorer.lastCommit?.offsets[TopicPartition("events", 0)])
    }
}

@Suite("Changelog restore")
struct ChangelogTests {
    @Test func aLaterMarkerOfTheSameSessionDropsATransactionItsOwnMarkerMadeLookCommitted() {
        var changelog = ChangelogPartition()
        changelog.write("s", 1, ["a": 1])
        changelog.commit("s", 1, reaching: 10)
        changelog.write("s", 2, ["a": 2, "b": 2])
        changelog.commit("s", 2, reaching: 20)
        changelog.write("s", 3, ["c": 3])
        changelog.commit("s", 3, reaching: 15, aborted: [2])

        let restored = changelog.restore()
        #expect(restored.versions == ["a": 1, "c": 3])
        #expect(restored.offset == 15)
    }

    @Test func theCurrentSessionsAbortsDropItsTransactionsSinceThePartitionChangedHands() {
        var changelog = ChangelogPartition()
        changelog.write("v", 1, ["a": 1])
        changelog.commit("v", 1, reaching: 5)
        changelog.write("s", 1, ["a": 2])
        changelog.commit("s", 1, reaching: 10)
        changelog.write("s", 2, ["b": 2])
        changelog.commit("s", 2, reaching: 20)

        let restored = changelog.restore(knowingAborted: ["s": [2]])
        #expect(restored.versions == ["a": 2])
        #expect(restored.offset == 10)
    }

    @Test func aTransactionTheNextOwnerBuiltOnStandsThoughItsSessionLaterCallsItAborted() {
        var changelog = ChangelogPartition()
        changelog.write("s", 1, ["a": 1])
        changelog.commit("s", 1, reaching: 10)
        // Aborted, but on a broker that shows it (the mock) the next owner took it as committed.
        changelog.write("s", 2, ["a": 2, "b": 2])
        changelog.commit("s", 2, reaching: 20)
        changelog.write("v", 1, ["a": 3])
        changelog.commit("v", 1, reaching: 25)
        // Back as owner, the first session lists the transaction among its aborted ones.
        changelog.write("s", 3, ["c": 3])
        changelog.commit("s", 3, reaching: 30, aborted: [2])

        let restored = changelog.restore(knowingAborted: ["s": [2]])
        #expect(restored.versions == ["a": 3, "b": 2, "c": 3])
        #expect(restored.offset == 30)
    }

    @Test func aCrashedSessionsUncommittedRecordsStayDroppedOnceThePartitionChangesHands() {
        var changelog = ChangelogPartition()
        changelog.write("s", 1, ["a": 1, "b": 1])
        changelog.commit("s", 1, reaching: 10)
        changelog.write("s", 2, ["a": 2, "b": nil])
        changelog.write("v", 1, ["c": 1])
        changelog.commit("v", 1, reaching: 12)

        let restored = changelog.restore()
        #expect(restored.versions == ["a": 1, "b": 1, "c": 1])
        #expect(restored.offset == 12)
    }
}
