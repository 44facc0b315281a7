import Kafka
import UpshiftCore

/// The changelog's record format, and how a partition's state is rebuilt from it.
///
/// Each transaction writes the customers it changed (key: customer id, value: ``StateCodec``
/// bytes, or none for a deleted customer) and ends with a commit marker keyed by the writer's
/// session, whose value holds the transaction's number in that session, the input offsets and the
/// stream time. Every record carries its session and transaction number in headers.
///
/// A restore applies a state record only when a marker of its session covers its transaction and
/// no marker of the session lists it among the aborted ones. On a real broker
/// `read_committed` already hides aborted transactions; librdkafka 2.0.2's mock does not, and this
/// rule drops them anyway, as it drops the open transaction of a session that crashed (no marker
/// of that session ever covers it). Markers are keyed per session, so compaction keeps the latest
/// marker of every session, which is all the rule needs. The last marker read gives
/// the input offsets to resume from, which also covers brokers that drop transactional offset
/// commits (the mock again).
///
/// A session's marker after another session's records means the partition changed hands: the new
/// owner restored what stood before it and built on that. So those earlier records are judged at
/// that point, as the new owner judged them, and stay judged: an aborted list written later (by
/// the earlier session, back as owner) no longer reaches them. On the mock, where an aborted
/// transaction can look committed to the next owner, this keeps every later restore consistent
/// with what that owner built on.
enum Changelog {
    static let sessionHeader = "upshift_session"
    static let transactionHeader = "upshift_txn"
    static let markerPrefix = "\u{0}upshift.commit/"

    /// The headers every record of one transaction carries: made once per transaction.
    static func headers(session: String, transaction: Int) -> [KafkaHeader] {
        [KafkaHeader(sessionHeader, session), KafkaHeader(transactionHeader, String(transaction))]
    }

    static func stateRecord(topic: String, partition: Int32, customerID: String, state: [UInt8]?, headers: [KafkaHeader]) -> ProducerRecord {
        ProducerRecord(topic: topic, partition: partition, key: Array(customerID.utf8), value: state, headers: headers)
    }

    static func marker(topic: String, partition: Int32, session: String, commit: Commit) -> ProducerRecord {
        var offsets = JSONObject()
        for (topicPartition, offset) in commit.offsets.sorted(by: { $0.key < $1.key }) {
            offsets["\(topicPartition.topic)/\(topicPartition.partition)"] = .number(Double(offset))
        }
        var value: JSONObject = ["transaction": .number(Double(commit.transaction)), "offsets": .object(offsets)]
        if !commit.aborted.isEmpty { value["aborted"] = .array(commit.aborted.map { .number(Double($0)) }) }
        if let streamTime = commit.streamTime { value["stream_time"] = .number(Double(streamTime.rawValue)) }
        if let layout = commit.layout {
            let object: JSONObject = [
                "metrics": .array(layout.metrics.map(JSONValue.string)),
                "suppressions": .array(layout.suppressions.map(JSONValue.string)),
                "workflows": .array(layout.workflows.map(JSONValue.string)),
            ]
            value["layout"] = .object(object)
        }
        var writer = JSONWriter()
        writer.write(.object(value))
        return ProducerRecord(
            topic: topic, partition: partition, key: Array((markerPrefix + session).utf8), value: writer.bytes,
            headers: [KafkaHeader(sessionHeader, session), KafkaHeader(transactionHeader, String(commit.transaction))])
    }

    /// What one transaction committed for one partition.
    struct Commit: Sendable, Hashable {
        var transaction: Int
        /// Transactions of this session that were aborted, which a restore must skip.
        var aborted: [Int] = []
        /// The next input offset to read, per input partition.
        var offsets: [TopicPartition: Int64]
        var streamTime: Timestamp?
        /// The layout of the program that wrote the transaction's states.
        var layout: StateLayout?
    }

    /// Rebuilds a partition's state from its changelog records: ``read(_:)`` each in order, then
    /// ``finish()``. Decisions wait for the end, or for the partition to change hands, because a
    /// later marker may declare an earlier transaction aborted, and an aborted transaction's own
    /// marker may be visible (on the mock).
    struct Restorer {
        let program: Program
        private(set) var states: [String: CustomerState] = [:]
        /// The encoded size of each restored customer's state.
        private(set) var sizes: [String: Int] = [:]
        /// The most recent commit that stands.
        private(set) var lastCommit: Commit?
        private(set) var recordsRead = 0
        /// Records without Upshift's headers, markers that are not JSON, and states that do not
        /// decode: counted and reported, never applied.
        private(set) var unusable = 0
        /// Records not judged yet, in the order read.
        private var entries: [(session: String, transaction: Int, customerID: String, value: [UInt8]?)] = []
        private var markers: [(session: String, commit: Commit)] = []
        /// The sessions with records in `entries` or `markers`.
        private var pendingSessions: Set<String> = []
        /// Transactions that markers declare aborted, by session.
        private var declared: [String: Set<Int>] = [:]
        /// Transactions known to be aborted although no marker says so yet.
        private let known: [String: Set<Int>]
        /// Each session's program layout, from its markers.
        private var layouts: [String: StateLayout] = [:]

        /// - Parameter aborted: transactions known to be aborted although no marker says so yet
        ///   (the current session's, when it rewinds). They count only among the records written
        ///   since the partition last changed hands: an owner since then built on what it read.
        init(program: Program, aborted: [String: Set<Int>] = [:]) {
            self.program = program
            known = aborted
        }

        mutating func read(_ record: ConsumerRecord) {
            recordsRead += 1
            guard let session = text(record.header(sessionHeader)?.value),
                let transaction = text(record.header(transactionHeader)?.value).flatMap({ Int($0) }),
                let key = text(record.key)
            else {
                unusable += 1
                return
            }
            if key.hasPrefix(markerPrefix) {
                guard let value = record.value, let commit = Self.commit(from: value, transaction: transaction) else {
                    unusable += 1
                    return
                }
                // Another session's records before this marker: the partition changed hands.
                if pendingSessions.contains(where: { $0 != session }) { judge(sparing: session, knowing: [:]) }
                markers.append((session, commit))
                pendingSessions.insert(session)
                declared[session, default: []].formUnion(commit.aborted)
                if let layout = commit.layout { layouts[session] = layout }
            } else {
                entries.append((session, transaction, key, record.value))
                pendingSessions.insert(session)
            }
        }

        /// Applies every record not judged yet whose transaction a standing marker of its session covers.
        mutating func finish() {
            judge(sparing: nil, knowing: known)
        }

        /// Applies, in the order read, each record not judged yet, except `owner`'s, whose
        /// transaction a standing marker of its session covers; forgets the rest of them.
        private mutating func judge(sparing owner: String?, knowing known: [String: Set<Int>]) {
            func isAborted(_ session: String, _ transaction: Int) -> Bool {
                declared[session]?.contains(transaction) ?? false || known[session]?.contains(transaction) ?? false
            }
            var covered: [String: Int] = [:]
            for marker in markers where marker.session != owner && !isAborted(marker.session, marker.commit.transaction) {
                covered[marker.session] = max(covered[marker.session] ?? marker.commit.transaction, marker.commit.transaction)
                lastCommit = marker.commit
            }
            for entry in entries where entry.session != owner {
                guard let limit = covered[entry.session], entry.transaction <= limit, !isAborted(entry.session, entry.transaction)
                else { continue }
                apply(entry.customerID, entry.value, layout: layouts[entry.session])
            }
            entries.removeAll { $0.session != owner }
            markers.removeAll { $0.session != owner }
            pendingSessions = owner.map { pendingSessions.contains($0) ? [$0] : [] } ?? []
        }

        private mutating func apply(_ customerID: String, _ value: [UInt8]?, layout: StateLayout?) {
            guard let value else {
                states[customerID] = nil
                sizes[customerID] = nil
                return
            }
            do {
                states[customerID] = try StateCodec.decode(value, program: program, layout: layout)
                sizes[customerID] = value.count
            } catch {
                unusable += 1
            }
        }

        static func commit(from bytes: [UInt8], transaction: Int) -> Commit? {
            guard case .object(let object)? = try? bytes.withUnsafeBufferPointer({ try JSONReader.parse($0) }) else { return nil }
            var offsets: [TopicPartition: Int64] = [:]
            for member in object["offsets"]?.object?.members ?? [] {
                guard let slash = member.key.lastIndex(of: "/"), let partition = Int32(member.key[member.key.index(after: slash)...]),
                    let offset = member.value.number
                else { continue }
                offsets[TopicPartition(String(member.key[..<slash]), partition)] = Int64(offset)
            }
            let streamTime = object["stream_time"]?.number.map { Timestamp(milliseconds: Int64($0)) }
            let aborted = object["aborted"].flatMap { value -> [Int]? in
                guard case .array(let numbers) = value else { return nil }
                return numbers.compactMap { $0.number.map(Int.init) }
            } ?? []
            let layout = object["layout"]?.object.map { layout in
                func names(_ key: String) -> [String] {
                    guard case .array(let values)? = layout[key] else { return [] }
                    return values.compactMap(\.string)
                }
                return StateLayout(metrics: names("metrics"), suppressions: names("suppressions"), workflows: names("workflows"))
            }
            return Commit(transaction: transaction, aborted: aborted, offsets: offsets, streamTime: streamTime, layout: layout)
        }

        private func text(_ bytes: [UInt8]?) -> String? { bytes.map { String(decoding: $0, as: UTF8.self) } }
    }
}
