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

    /// The record's JSON, with a fixed member order: equal outputs are equal bytes.
    public var json: JSONValue {
        var object = JSONObject()
        object["type"] = .string(kind.rawValue)
        object["decision_id"] = .string(decisionID)
        object["customer_id"] = .string(customerID)
        if let workflowID { object["workflow_id"] = .string(workflowID) }
        if let workflowVersion { object["workflow_version"] = .number(Double(workflowVersion)) }
        if let step { object["step"] = .string(step) }
        if let variant { object["variant"] = .string(variant) }
        if let channel { object["channel"] = .string(channel.rawValue) }
        if let queue { object["queue"] = .string(queue) }
        if let template { object["template"] = .string(template) }
        if let offer { object["offer"] = .object(offer) }
        if !reasons.isEmpty { object["reasons"] = .array(reasons.map(JSONValue.string)) }
        if !evidence.isEmpty { object["evidence"] = .object(evidence) }
        object["event_time"] = .string(eventTime.description)
        object["decision_time"] = .string(decisionTime.description)
        return .object(object)
    }

    /// For a conversion or guardrail: the variant, `treatment` (a workflow without variants) or
    /// `holdout`, whichever the attributed assignment was.
    public var arm: String {
        evidence["arm"]?.string == "holdout" ? "holdout" : variant ?? "treatment"
    }

    /// One line of JSON.
    public var jsonLine: String {
        var writer = JSONWriter()
        writer.write(json)
        return writer.text
    }
}
