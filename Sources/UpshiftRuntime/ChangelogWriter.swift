import Kafka
import UpshiftCore

/// Encodes one partition's changed customer states into changelog records, and keeps the
/// encoded size of every state it wrote, for the partition's state-bytes gauge.
///
/// Encoding is most of a commit's work, so it runs on the commit thread, off the processing
/// thread. One thread uses a writer at a time: the commit thread while a commit is in flight,
/// the processing thread otherwise (a synchronous commit, a restore), and the processing thread
/// reads ``stateBytes`` only once the commit has landed. Hence unchecked Sendable.
final class ChangelogWriter: @unchecked Sendable {
    let topic: String
    let partition: Int32
    private var sizes: [String: Int]
    /// The encoded size of the partition's states as last written (or restored).
    private(set) var stateBytes: Int

    init(topic: String, partition: Int32, restoredSizes: [String: Int]) {
        self.topic = topic
        self.partition = partition
        sizes = restoredSizes
        stateBytes = restoredSizes.values.reduce(0, +)
    }

    /// The records of one transaction's changes: each changed customer's state (none for a
    /// forgotten one), then the commit marker.
    func records(for batch: ChangelogBatch, session: String) -> [ProducerRecord] {
        let headers = Changelog.headers(session: session, transaction: batch.commit.transaction)
        var records: [ProducerRecord] = []
        records.reserveCapacity(batch.changes.count + 1)
        for index in batch.changes.indices {
            let customerID = batch.changes[index].customerID
            let encoded = batch.changes[index].state.map(StateCodec.encode)
            stateBytes += (encoded?.count ?? 0) - (sizes[customerID] ?? 0)
            sizes[customerID] = encoded?.count
            records.append(Changelog.stateRecord(topic: topic, partition: partition, customerID: customerID, state: encoded, headers: headers))
        }
        records.append(Changelog.marker(topic: topic, partition: partition, session: session, commit: batch.commit))
        return records
    }
}

/// What one partition changed in one transaction, taken from its engine on the processing thread
/// and encoded by its ``ChangelogWriter`` on the commit thread. The states are copies that share
/// storage with the engine's until either side changes them.
struct ChangelogBatch: Sendable {
    let writer: ChangelogWriter
    /// In the order the customers first changed; a nil state is a forgotten customer.
    let changes: [(customerID: String, state: CustomerState?)]
    let commit: Changelog.Commit

    func records(session: String) -> [ProducerRecord] {
        writer.records(for: self, session: session)
    }
}
