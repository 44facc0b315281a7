/// A product event in Segment's spec, the form Segment, RudderStack and most CDPs send to Kafka.
public struct Event: Sendable, Hashable {
    public enum Kind: String, Sendable, Hashable, CaseIterable {
        case track, identify, group, page, screen, alias
    }

    public var kind: Kind
    /// `userId` when known, otherwise `anonymousId`: the key of the customer's state.
    public var customerID: String
    public var userID: String?
    public var anonymousID: String?
    public var messageID: String
    /// Event time: `timestamp`, else `originalTimestamp`, else `receivedAt`.
    public var timestamp: Timestamp
    /// The `event` of a track call, or the `name` of a page or screen call.
    public var name: String?
    public var properties: JSONObject
    public var traits: JSONObject
    /// The account of a `group` call.
    public var groupID: String?
    /// The id an `alias` call links to `userId`.
    public var previousID: String?

    public init(
        kind: Kind, customerID: String, userID: String? = nil, anonymousID: String? = nil, messageID: String,
        timestamp: Timestamp, name: String? = nil, properties: JSONObject = JSONObject(),
        traits: JSONObject = JSONObject(), groupID: String? = nil, previousID: String? = nil
    ) {
        self.kind = kind
        self.customerID = customerID
        self.userID = userID
        self.anonymousID = anonymousID
        self.messageID = messageID
        self.timestamp = timestamp
        self.name = name
        self.properties = properties
        self.traits = traits
        self.groupID = groupID
        self.previousID = previousID
    }
}

/// Why a record is not a usable event: the field at fault and the reason, as a dead-letter
/// record will carry them.
public struct EventError: Error, Sendable, Hashable, CustomStringConvertible {
    /// A dotted path into the record (`timestamp`, `properties.quantity`), or `record` for the whole.
    public var field: String
    /// The kind of problem, from a fixed set: for counting and routing, where ``reason`` is for people.
    public var problem: Problem
    public var reason: String

    public enum Problem: String, Sendable, Hashable, CaseIterable {
        case tooLarge = "too_large"
        case malformed
        case notAnObject = "not_an_object"
        case unknownType = "unknown_type"
        case missing
        case empty
        case wrongType = "wrong_type"
        case badTime = "bad_time"
    }

    public init(field: String, problem: Problem, reason: String) {
        self.field = field
        self.problem = problem
        self.reason = reason
    }

    public var description: String { "\(field): \(reason)" }
}

/// Turns raw JSON records into ``Event``s.
public struct EventDecoder: Sendable {
    /// Records larger than this are refused before parsing.
    public var maximumBytes: Int

    public init(maximumBytes: Int = 64 * 1024) {
        self.maximumBytes = maximumBytes
    }

    public func decode(_ text: String) throws(EventError) -> Event {
        var text = text
        return try text.withUTF8 { bytes in Result { () throws(EventError) in try decode(bytes) } }.get()
    }

    public func decode(_ bytes: [UInt8]) throws(EventError) -> Event {
        try bytes.withUnsafeBufferPointer { bytes in Result { () throws(EventError) in try decode(bytes) } }.get()
    }

    public func decode(_ bytes: UnsafeBufferPointer<UInt8>) throws(EventError) -> Event {
        guard bytes.count <= maximumBytes else {
            throw EventError(field: "record", problem: .tooLarge, reason: "\(bytes.count) bytes is over the limit of \(maximumBytes)")
        }
        let value: JSONValue
        do {
            value = try JSONReader.parse(bytes)
        } catch {
            throw EventError(field: "record", problem: .malformed, reason: error.description)
        }
        guard case .object(let record) = value else {
            throw EventError(field: "record", problem: .notAnObject, reason: "expected a JSON object, got \(value.typeName)")
        }
        return try Self.event(from: record)
    }

    static func event(from record: JSONObject) throws(EventError) -> Event {
        let typeName = try requiredString(record, "type")
        guard let kind = Event.Kind(rawValue: typeName) else {
            throw EventError(
                field: "type", problem: .unknownType,
                reason: "unknown event type \"\(typeName)\"; expected one of \(Event.Kind.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        let userID = try optionalString(record, "userId")
        let anonymousID = try optionalString(record, "anonymousId")
        guard let customerID = userID ?? anonymousID else {
            throw EventError(field: "userId", problem: .missing, reason: "missing: a record needs a userId or an anonymousId")
        }
        let messageID = try requiredString(record, "messageId")
        let timestamp = try eventTime(record)
        var event = Event(
            kind: kind, customerID: customerID, userID: userID, anonymousID: anonymousID, messageID: messageID,
            timestamp: timestamp,
            properties: try optionalObject(record, "properties"),
            traits: try optionalObject(record, "traits"))
        switch kind {
        case .track:
            event.name = try requiredString(record, "event")
        case .page, .screen:
            event.name = try optionalString(record, "name")
        case .group:
            event.groupID = try requiredString(record, "groupId")
        case .alias:
            guard userID != nil else { throw EventError(field: "userId", problem: .missing, reason: "missing: an alias call needs the userId it links to") }
            event.previousID = try requiredString(record, "previousId")
        case .identify:
            break
        }
        if let timezone = record["context"]?.value(at: ["timezone"])?.string, event.traits["timezone"] == nil, kind == .identify {
            event.traits["timezone"] = .string(timezone)
        }
        return event
    }

    private static func eventTime(_ record: JSONObject) throws(EventError) -> Timestamp {
        for field in ["timestamp", "originalTimestamp", "receivedAt"] {
            guard let value = record[field], value != .null else { continue }
            guard case .string(let text) = value else {
                throw EventError(field: field, problem: .wrongType, reason: "expected an ISO-8601 date-time string, got \(value.typeName)")
            }
            guard let time = ISO8601.parse(text) else {
                throw EventError(field: field, problem: .badTime, reason: "not an ISO-8601 date-time: \"\(text)\"")
            }
            return time
        }
        throw EventError(field: "timestamp", problem: .missing, reason: "missing: a record needs a timestamp, originalTimestamp or receivedAt")
    }

    private static func requiredString(_ record: JSONObject, _ field: String) throws(EventError) -> String {
        guard let value = try optionalString(record, field) else {
            throw EventError(field: field, problem: .missing, reason: "missing")
        }
        return value
    }

    private static func optionalString(_ record: JSONObject, _ field: String) throws(EventError) -> String? {
        switch record[field] {
        case nil, .null?: return nil
        case .string(let text)?:
            guard !text.isEmpty else { throw EventError(field: field, problem: .empty, reason: "empty string") }
            return text
        case let other?: throw EventError(field: field, problem: .wrongType, reason: "expected a string, got \(other.typeName)")
        }
    }

    private static func optionalObject(_ record: JSONObject, _ field: String) throws(EventError) -> JSONObject {
        switch record[field] {
        case nil, .null?: return JSONObject()
        case .object(let object)?: return object
        case let other?: throw EventError(field: field, problem: .wrongType, reason: "expected an object, got \(other.typeName)")
        }
    }
}
