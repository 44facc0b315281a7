import Yams

/// A workflow QA case a marketer writes: given these traits and events at these times, expect
/// exactly these outputs and no others.
///
/// ```yaml
/// name: near the quota, the usage guide goes out after three days
/// workflows: [../shared.yaml, ../saas-quota.yaml]
/// customer: customer-1
/// traits: { plan: starter, quota: { api_calls: 10000 } }
/// start: 2026-03-01T09:00:00Z
/// events:
///   - { at: 2026-03-01T10:00:00Z, track: Usage Recorded, properties: { metric: api_calls, quantity: 8600 } }
/// until: 2026-03-05T00:00:00Z
/// expect:
///   - { at: 2026-03-04T10:00:00Z, offer: email, template: optimize-usage-guide }
/// ```
public struct Scenario: Sendable, Decodable {
    public var name: String
    /// Workflow files (or directories of them), relative to the scenario file unless absolute.
    public var workflows: [String]
    public var customer: String?
    public var traits: JSONObject?
    public var start: Timestamp
    public var events: [ScenarioEvent]
    /// Timers due up to this time fire before the outputs are compared.
    public var until: Timestamp
    public var expect: [Expectation]

    /// Reads a scenario file; a field that is missing or of the wrong kind is named in the error.
    public static func decode(yaml: String) throws(ScenarioError) -> Scenario {
        do {
            return try YAMLDecoder().decode(Scenario.self, from: yaml)
        } catch let error as DecodingError {
            throw ScenarioError(error)
        } catch {
            throw ScenarioError(field: nil, reason: "\(error)")
        }
    }

    /// Whether a YAML text is a workflow file rather than a scenario: it declares metrics,
    /// suppressions, caps, guardrails or settings, or lists workflows as definitions rather than
    /// as file names. Marketers keep scenarios beside the workflows they test, and `upshift test`
    /// passes over these.
    public static func isWorkflowFile(yaml: String) -> Bool {
        guard let mapping = (try? Yams.compose(yaml: yaml))??.mapping else { return false }
        let declarations: Set<String> = ["metrics", "suppressions", "caps", "guardrails", "settings"]
        if mapping.keys.contains(where: { $0.string.map(declarations.contains) ?? false }) { return true }
        return mapping["workflows"]?.sequence?.contains { $0.mapping != nil } ?? false
    }

    public var customerID: String { customer ?? "customer-1" }

    /// The scenario's events, the opening `identify` first.
    public var stream: [Event] {
        var events: [Event] = []
        if let traits {
            events.append(Event(kind: .identify, customerID: customerID, userID: customerID, messageID: "scenario-traits", timestamp: start, traits: PackedJSONObject(traits)))
        }
        for (offset, entry) in self.events.enumerated() {
            let customer = entry.customer ?? customerID
            var event = Event(
                kind: entry.kind, customerID: customer, userID: customer, messageID: entry.messageID ?? "scenario-\(offset)",
                timestamp: entry.at, name: entry.name, properties: PackedJSONObject(entry.properties ?? JSONObject()), traits: PackedJSONObject(entry.traits ?? JSONObject()))
            if entry.kind == .group { event.groupID = entry.name }
            events.append(event)
        }
        return events
    }

    /// Runs the scenario and compares what came out with what was expected.
    public func run(_ program: Program) -> ScenarioResult {
        var replay = StreamEngine(program: program)
        var outputs: [Output] = []
        for event in stream.sorted(by: { $0.timestamp < $1.timestamp }) { outputs += replay.process(event) }
        outputs += replay.advance(to: until)
        return ScenarioResult(name: name, expected: expect, actual: outputs)
    }
}

/// Why a scenario file cannot be read: the field at fault, as a path (`events[1].at`), and why.
public struct ScenarioError: Error, Sendable, Hashable, CustomStringConvertible {
    /// Nil when the file as a whole is at fault (not YAML, or not a mapping).
    public var field: String?
    public var reason: String

    public init(field: String?, reason: String) {
        self.field = field
        self.reason = reason
    }

    init(_ error: DecodingError) {
        switch error {
        case .keyNotFound(let key, let context):
            self.init(field: Self.path(context.codingPath + [key]), reason: "missing")
        case .valueNotFound(let type, let context):
            self.init(field: Self.path(context.codingPath), reason: "missing: expected \(Self.describe(type))")
        case .typeMismatch(let type, let context):
            self.init(field: Self.path(context.codingPath), reason: "expected \(Self.describe(type))")
        case .dataCorrupted(let context):
            self.init(field: Self.path(context.codingPath), reason: context.debugDescription)
        @unknown default:
            self.init(field: nil, reason: "\(error)")
        }
    }

    public var description: String { field.map { "\($0): \(reason)" } ?? reason }

    /// `events[1].at` from the decoder's keys; nil at the top.
    private static func path(_ keys: [any CodingKey]) -> String? {
        var path = ""
        for key in keys {
            if let index = key.intValue {
                path += "[\(index)]"
            } else {
                path += path.isEmpty ? key.stringValue : ".\(key.stringValue)"
            }
        }
        return path.isEmpty ? nil : path
    }

    /// The kind of YAML value a type is read from (Yams names its containers `Node.Sequence`
    /// and `Node.Mapping`).
    private static func describe(_ type: Any.Type) -> String {
        let name = String(describing: type)
        return switch type {
        case is String.Type: "text"
        case is Double.Type, is Int.Type: "a number"
        case is Bool.Type: "true or false"
        case is [Any].Type: "a list"
        case is [String: Any].Type: "a mapping"
        default: name.hasSuffix("Sequence") ? "a list" : name.hasSuffix("Mapping") ? "a mapping" : name
        }
    }
}

/// One event of a scenario: `track`, `identify`, `page` or `group` names its kind.
public struct ScenarioEvent: Sendable, Decodable {
    public var at: Timestamp
    public var kind: Event.Kind
    public var name: String?
    public var properties: JSONObject?
    public var traits: JSONObject?
    public var customer: String?
    public var messageID: String?

    enum CodingKeys: String, CodingKey {
        case at, track, identify, page, group, properties, traits, customer
        case messageID = "message_id"
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        at = try container.decode(Timestamp.self, forKey: .at)
        customer = try container.decodeIfPresent(String.self, forKey: .customer)
        messageID = try container.decodeIfPresent(String.self, forKey: .messageID)
        properties = try container.decodeIfPresent(JSONObject.self, forKey: .properties)
        traits = try container.decodeIfPresent(JSONObject.self, forKey: .traits)
        if let name = try container.decodeIfPresent(String.self, forKey: .track) {
            kind = .track
            self.name = name
        } else if let traits = try container.decodeIfPresent(JSONObject.self, forKey: .identify) {
            kind = .identify
            self.traits = traits
        } else if let name = try container.decodeIfPresent(String.self, forKey: .page) {
            kind = .page
            self.name = name
        } else if let group = try container.decodeIfPresent(String.self, forKey: .group) {
            kind = .group
            self.name = group
        } else {
            throw DecodingError.dataCorruptedError(
                forKey: .track, in: container, debugDescription: "an event needs track, identify, page or group")
        }
    }
}

/// An expected output: its kind with its channel, queue, reasons or flag, its time, and any
/// other fields worth pinning down. Fields left out are not compared.
public struct Expectation: Sendable, Decodable, Hashable {
    public var at: Timestamp
    public var offer: Channel?
    public var task: String?
    public var suppression: [String]?
    public var exit: String?
    public var holdout: Bool?
    public var lateEvent: Bool?
    /// The name of the conversion or guardrail attributed.
    public var conversion: String?
    public var guardrail: String?
    public var template: String?
    public var step: String?
    public var workflow: String?
    public var variant: String?
    public var customer: String?

    enum CodingKeys: String, CodingKey {
        case at, offer, task, suppression, exit, holdout, conversion, guardrail, template, step, workflow, variant, customer
        case lateEvent = "late_event"
    }

    /// An output in the same words as an expectation: only the fields `expectation` lists, or
    /// every field when there is none to go by.
    static func describe(_ output: Output, like expectation: Expectation?) -> String {
        var parts: [String]
        switch output.kind {
        case .offer: parts = ["offer \(output.channel?.rawValue ?? "-")"]
        case .task: parts = ["task \(output.queue ?? "-")"]
        case .suppression: parts = ["suppression [\(output.reasons.joined(separator: ", "))]"]
        case .exit: parts = ["exit \(output.reasons.first ?? "-")"]
        case .holdout: parts = ["holdout"]
        case .lateEvent: parts = ["late_event"]
        case .conversion: parts = ["conversion \(output.reasons.first ?? "-")"]
        case .guardrail: parts = ["guardrail \(output.reasons.first ?? "-")"]
        case .pause: parts = ["pause \(output.variant ?? "-") \(output.reasons.first ?? "-")"]
        }
        parts.append("at \(output.eventTime)")
        if expectation == nil || expectation?.template != nil, let template = output.template { parts.append("template \(template)") }
        if expectation == nil || expectation?.step != nil, let step = output.step { parts.append("step \(step)") }
        if expectation == nil || expectation?.workflow != nil, let workflow = output.workflowID { parts.append("workflow \(workflow)") }
        if expectation == nil || expectation?.variant != nil, let variant = output.variant { parts.append("variant \(variant)") }
        if expectation?.customer != nil { parts.append("customer \(output.customerID)") }
        return parts.joined(separator: ", ")
    }

    var description: String {
        var parts: [String]
        if let offer { parts = ["offer \(offer.rawValue)"] }
        else if let task { parts = ["task \(task)"] }
        else if let suppression { parts = ["suppression [\(suppression.joined(separator: ", "))]"] }
        else if let exit { parts = ["exit \(exit)"] }
        else if holdout == true { parts = ["holdout"] }
        else if lateEvent == true { parts = ["late_event"] }
        else if let conversion { parts = ["conversion \(conversion)"] }
        else if let guardrail { parts = ["guardrail \(guardrail)"] }
        else { parts = ["(no kind: give offer, task, suppression, exit, holdout, conversion, guardrail or late_event)"] }
        parts.append("at \(at)")
        if let template { parts.append("template \(template)") }
        if let step { parts.append("step \(step)") }
        if let workflow { parts.append("workflow \(workflow)") }
        if let variant { parts.append("variant \(variant)") }
        if let customer { parts.append("customer \(customer)") }
        return parts.joined(separator: ", ")
    }
}

/// The outcome of a scenario, with a readable diff when it failed.
public struct ScenarioResult: Sendable {
    public var name: String
    public var expected: [Expectation]
    public var actual: [Output]

    /// Each line of the comparison: `  ` for a match, `- ` for an expected output that did not
    /// come, `+ ` for one that came unexpected.
    public var diff: [String] {
        var lines: [String] = []
        var index = 0
        for expectation in expected {
            let wanted = expectation.description
            if let found = actual[index...].firstIndex(where: { Expectation.describe($0, like: expectation) == wanted }) {
                for extra in actual[index..<found] { lines.append("+ \(Expectation.describe(extra, like: nil))") }
                lines.append("  \(wanted)")
                index = found + 1
            } else {
                lines.append("- \(wanted)")
            }
        }
        for extra in actual[index...] { lines.append("+ \(Expectation.describe(extra, like: nil))") }
        return lines
    }

    public var passed: Bool { diff.allSatisfy { $0.hasPrefix("  ") } }
}

extension JSONObject: Decodable {
    public init(from decoder: any Decoder) throws {
        guard case .object(let object) = try JSONValue(from: decoder) else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "expected a mapping"))
        }
        self = object
    }
}

extension JSONValue: Decodable {
    public init(from decoder: any Decoder) throws {
        if let keyed = try? decoder.container(keyedBy: AnyKey.self) {
            self = .object(JSONObject(try keyed.allKeys.map { key in (key: key.stringValue, value: try keyed.decode(JSONValue.self, forKey: key)) }))
            return
        }
        if var list = try? decoder.unkeyedContainer() {
            var elements: [JSONValue] = []
            while !list.isAtEnd { elements.append(try list.decode(JSONValue.self)) }
            self = .array(elements)
            return
        }
        let single = try decoder.singleValueContainer()
        if single.decodeNil() { self = .null }
        else if let bool = try? single.decode(Bool.self) { self = .bool(bool) }
        else if let number = try? single.decode(Double.self) { self = .number(number) }
        else { self = .string(try single.decode(String.self)) }
    }
}

private struct AnyKey: CodingKey {
    var stringValue: String
    var intValue: Int? { nil }
    init(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { nil }
}
