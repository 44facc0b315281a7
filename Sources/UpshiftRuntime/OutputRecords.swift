import Kafka
import UpshiftCore

/// Turns engine outputs and refused records into Kafka records.
///
/// Every output is keyed by customer id, its value is the output's JSON, and its headers carry the
/// decision id, the workflow and CloudEvents attributes, so that channel services can route and
/// deduplicate without parsing the value.
struct OutputRecords: Sendable {
    let topics: OutputTopics
    /// The headers every output shares, and its kind's CloudEvents type: made once, not per output.
    private let specVersion: KafkaHeader
    private let sourceHeader: KafkaHeader
    private let types: [Output.Kind: KafkaHeader]

    init(topics: OutputTopics, source: String) {
        self.topics = topics
        specVersion = KafkaHeader("ce_specversion", "1.0")
        sourceHeader = KafkaHeader("ce_source", source)
        types = Dictionary(uniqueKeysWithValues: Output.Kind.allCases.map { ($0, KafkaHeader("ce_type", "io.upshift.\($0.rawValue)")) })
    }

    func record(for output: Output) -> ProducerRecord {
        var writer = JSONWriter()
        writer.write(output)
        // The decision id's bytes once, for both headers that carry it.
        let decisionID = Array(output.decisionID.utf8)
        var headers: [KafkaHeader] = []
        headers.reserveCapacity(8)
        headers.append(KafkaHeader("upshift_decision_id", decisionID))
        headers.append(specVersion)
        headers.append(KafkaHeader("ce_id", decisionID))
        headers.append(types[output.kind]!)
        headers.append(sourceHeader)
        headers.append(KafkaHeader("ce_time", output.decisionTime.description))
        if let workflow = output.workflowID { headers.append(KafkaHeader("upshift_workflow_id", workflow)) }
        if let version = output.workflowVersion { headers.append(KafkaHeader("upshift_workflow_version", String(version))) }
        // A pause is keyed by the arm it stops, so that the compacted control topic keeps one per arm.
        let key = output.kind == .pause ? Self.controlKey(output) : output.customerID
        return ProducerRecord(
            topic: topic(for: output), key: Array(key.utf8), value: writer.bytes, headers: headers,
            timestamp: output.decisionTime.rawValue)
    }

    func topic(for output: Output) -> String {
        switch output.kind {
        case .offer:
            switch output.channel {
            case .email?: topics.email
            case .inApp?: topics.inApp
            case .sms?: topics.sms
            case .push?: topics.push
            case nil: topics.email
            }
        case .task: topics.customerSuccess
        case .suppression: topics.suppressions
        case .holdout: topics.holdouts
        case .exit, .conversion, .guardrail: topics.outcomes
        case .pause: topics.control
        case .lateEvent: topics.deadLetter
        }
    }

    static func controlKey(_ output: Output) -> String {
        "pause/\(output.workflowID ?? "")/\(output.workflowVersion ?? 0)/\(output.variant ?? "")"
    }

    /// The pause a control record holds, if it is one.
    static func pause(from value: [UInt8]) -> Pause? {
        (try? value.withUnsafeBufferPointer { try JSONReader.parse($0) })?.object.flatMap(Pause.init)
    }

    /// The dead-letter record of an input record: its original key, value and headers, with
    /// where it came from and why in added headers.
    func deadLetter(_ record: ConsumerRecord, _ rejection: Rejection) -> ProducerRecord {
        ProducerRecord(
            topic: topics.deadLetter, key: record.key, value: record.value,
            headers: record.headers + [
                KafkaHeader("upshift_dlq_reason", rejection.reason),
                KafkaHeader("upshift_dlq_problem", rejection.problem),
                KafkaHeader("upshift_dlq_field", rejection.field),
                KafkaHeader("upshift_dlq_topic", record.topic),
                KafkaHeader("upshift_dlq_partition", String(record.partition)),
                KafkaHeader("upshift_dlq_offset", String(record.offset)),
            ],
            timestamp: record.timestamp?.milliseconds)
    }
}
