/// What the engine decided. Every output carries the customer, the event time it answers (or the
/// due time of the timer that produced it) and the decision time.
public struct Output: Sendable, Hashable {
    public enum Kind: String, Sendable, Hashable, CaseIterable {
        /// A message to send on a channel.
        case offer
        /// Work for a human queue, such as customer success.
        case task
        /// A workflow held back, or a step skipped, and why.
        case suppression
        /// A customer entered a workflow's holdout: decided, not sent, recorded for measurement.
        case holdout
        /// A customer left a workflow.
        case exit
        /// A conversion attributed to the customer's latest assignment (treatment or holdout).
        case conversion
        /// A guardrail event (an unsubscribe, a complaint...) attributed the same way.
        case guardrail
        /// A variant paused by a guardrail rate over its bound; goes to the control topic.
        case pause
        /// An event that arrived later than the allowed lateness; it was not folded into state.
        case lateEvent = "late_event"
    }

    public var kind: Kind
    /// Deterministic: the same input gives the same id, so a replayed or retried decision is recognisable.
    public var decisionID: String
    public var customerID: String
    public var workflowID: String?
    public var workflowVersion: Int?
    public var step: String?
    public var variant: String?
    public var channel: Channel?
    public var queue: String?
    public var template: String?
    public var offer: JSONObject?
    public var reasons: [String]
    public var evidence: JSONObject
    public var eventTime: Timestamp
    public var decisionTime: Timestamp

    init(kind: Kind, decisionID: String, customerID: String, eventTime: Timestamp, decisionTime: Timestamp) {
        self.kind = kind
        self.decisionID = decisionID
        self.customerID = customerID
        self.reasons = []
        self.evidence = JSONObject()
        self.eventTime = eventTime
        self.decisionTime = decisionTime
    }

    /// The record's JSON as a value: what `JSONWriter.write(_:)` writes for it, read back, so that
    /// the members are defined in one place.
    public var json: JSONValue {
        var writer = JSONWriter()
        writer.write(self)
        var bytes = writer.bytes
        // The writer only writes valid JSON: a failure here is a bug in it.
        return bytes.withUnsafeMutableBufferPointer { buffer in
            do throws(JSONSyntaxError) { return try JSONReader.parse(UnsafeBufferPointer(buffer)) } catch { fatalError("output JSON does not parse: \(error)") }
        }
    }

    /// For a conversion or guardrail: the variant, `treatment` (a workflow without variants) or
    /// `holdout`, whichever the attributed assignment was.
    public var arm: String {
        evidence["arm"]?.string == "holdout" ? "holdout" : variant ?? "treatment"
    }

    /// One line of JSON.
    public var jsonLine: String {
        var writer = JSONWriter()
        writer.write(self)
        return writer.text
    }
}

extension JSONWriter {
    /// Writes an output's record with a fixed member order, so that equal outputs are equal
    /// bytes; straight from its fields, with no JSON value built first (it runs for every output).
    public mutating func write(_ output: Output) {
        append(byte: UInt8(ascii: "{"))
        member("type", first: true)
        write(string: output.kind.rawValue)
        member("decision_id", string: output.decisionID)
        member("customer_id", string: output.customerID)
        member("workflow_id", string: output.workflowID)
        if let version = output.workflowVersion {
            member("workflow_version")
            write(number: Double(version))
        }
        member("step", string: output.step)
        member("variant", string: output.variant)
        member("channel", string: output.channel?.rawValue)
        member("queue", string: output.queue)
        member("template", string: output.template)
        if let offer = output.offer {
            member("offer")
            write(.object(offer))
        }
        if !output.reasons.isEmpty {
            member("reasons")
            append(byte: UInt8(ascii: "["))
            for index in output.reasons.indices {
                if index > 0 { append(byte: UInt8(ascii: ",")) }
                write(string: output.reasons[index])
            }
            append(byte: UInt8(ascii: "]"))
        }
        if !output.evidence.isEmpty {
            member("evidence")
            write(.object(output.evidence))
        }
        member("event_time")
        write(time: output.eventTime)
        member("decision_time")
        write(time: output.decisionTime)
        append(byte: UInt8(ascii: "}"))
    }

    /// A string member, left out when there is no value.
    private mutating func member(_ name: StaticString, string value: String?) {
        guard let value else { return }
        member(name)
        write(string: value)
    }

    /// A timestamp as a string, its digits written in place.
    private mutating func write(time: Timestamp) {
        append(byte: UInt8(ascii: "\""))
        append(time)
        append(byte: UInt8(ascii: "\""))
    }

    /// A member's name and colon, after a comma unless it is the first; the names here are plain
    /// ASCII and need no escaping.
    private mutating func member(_ name: StaticString, first: Bool = false) {
        let comma = first ? 0 : 1
        let count = name.utf8CodeUnitCount
        append(count: comma + count + 3) { out in
            if comma == 1 { out[0] = UInt8(ascii: ",") }
            out[comma] = UInt8(ascii: "\"")
            (out + comma + 1).update(from: name.utf8Start, count: count)
            out[comma + count + 1] = UInt8(ascii: "\"")
            out[comma + count + 2] = UInt8(ascii: ":")
        }
    }
}
