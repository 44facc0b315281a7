/// A product event in Segment's spec, the form Segment, RudderStack and most CDPs send to Kafka.
public struct Event: Sendable, Hashable {
    public enum Kind: String, Sendable, Hashable, CaseIterable {
        case track, identify, group, page, screen, alias

        /// The kind whose name the bytes are, found without making a String of them.
        static func named(_ bytes: UnsafeBufferPointer<UInt8>) -> Kind? {
            guard let first = bytes.first else { return nil }
            let candidate: Kind? =
                switch (bytes.count, first) {
                case (5, UInt8(ascii: "t")): .track
                case (8, UInt8(ascii: "i")): .identify
                case (5, UInt8(ascii: "g")): .group
                case (4, UInt8(ascii: "p")): .page
                case (6, UInt8(ascii: "s")): .screen
                case (5, UInt8(ascii: "a")): .alias
                default: nil
                }
            return candidate.flatMap { kind in memcmpEqual(kind.name.utf8Start, bytes.baseAddress!, bytes.count) ? kind : nil }
        }

        /// The raw value as bytes, to compare with a record's without making a String.
        private var name: StaticString {
            switch self {
            case .track: "track"
            case .identify: "identify"
            case .group: "group"
            case .page: "page"
            case .screen: "screen"
            case .alias: "alias"
            }
        }
    }

    public var kind: Kind
    /// `userId` when known, otherwise `anonymousId`: the key of the customer's state.
    public var customerID: String
    public var userID: String?
    public var anonymousID: String?
    // The event time is declared before the message id, unlike in the initializer below, so that
    // the memberwise initializer Swift makes differs from it and it can call that one. An
    // initializer that sets each field itself had every decoded event copied once (each string
    // and object retained, then released) on its way out of the decoder.
    /// Event time: `timestamp`, else `originalTimestamp`, else `receivedAt`.
    public var timestamp: Timestamp
    public var messageID: String
    /// The `event` of a track call, or the `name` of a page or screen call.
    public var name: String?
    /// Kept as packed text (the record's own when it is in the writer's form): most events carry
    /// a few properties, of which the rules read one or two, and a tree of them cost more to
    /// build and to free than to scan.
    public var properties: PackedJSONObject
    /// Kept as text: an `identify` carries many, and most go into the customer's state as text.
    public var traits: PackedJSONObject
    private var links: Links?

    /// The account of a `group` call.
    public var groupID: String? {
        get { links?.groupID }
        set { links = Links.of(groupID: newValue, previousID: previousID) }
    }

    /// The id an `alias` call links to `userId`.
    public var previousID: String? {
        get { links?.previousID }
        set { links = Links.of(groupID: groupID, previousID: newValue) }
    }

    /// What only `group` and `alias` calls carry, behind one reference: an event is moved several
    /// times on its way to the engine, and without these two fields it fits the few register
    /// moves that the compiler makes of a value up to 128 bytes, where a larger one takes a call
    /// to `memcpy` each time.
    private final class Links: Sendable, Hashable {
        let groupID: String?
        let previousID: String?

        private init(groupID: String?, previousID: String?) {
            self.groupID = groupID
            self.previousID = previousID
        }

        /// Nil when there is neither; not a failable initializer, which would allocate first.
        static func of(groupID: String?, previousID: String?) -> Links? {
            groupID == nil && previousID == nil ? nil : Links(groupID: groupID, previousID: previousID)
        }

        static func == (a: Links, b: Links) -> Bool { a.groupID == b.groupID && a.previousID == b.previousID }

        func hash(into hasher: inout Hasher) {
            hasher.combine(groupID)
            hasher.combine(previousID)
        }
    }
}

extension Event {
    public init(
        kind: Kind, customerID: String, userID: String? = nil, anonymousID: String? = nil, messageID: String,
        timestamp: Timestamp, name: String? = nil, properties: PackedJSONObject = PackedJSONObject(),
        traits: PackedJSONObject = PackedJSONObject(), groupID: String? = nil, previousID: String? = nil
    ) {
        self.init(
            kind: kind, customerID: customerID, userID: userID, anonymousID: anonymousID, timestamp: timestamp, messageID: messageID,
            name: name, properties: properties, traits: traits, links: Links.of(groupID: groupID, previousID: previousID))
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
        // Thrown straight through: a `Result` in between would copy the event out of it, every
        // string and object retained and released once more.
        try bytes.withUnsafeBufferPointer { bytes throws(EventError) in try decode(bytes) }
    }

    public func decode(_ bytes: UnsafeBufferPointer<UInt8>) throws(EventError) -> Event {
        guard bytes.count <= maximumBytes else {
            throw EventError(field: "record", problem: .tooLarge, reason: "\(bytes.count) bytes is over the limit of \(maximumBytes)")
        }
        var record = RecordFields()
        let problem: EventError?
        do {
            problem = try Self.read(bytes, into: &record)
        } catch {
            throw EventError(field: "record", problem: .malformed, reason: error.description)
        }
        if let problem { throw problem }
        return try Self.event(from: record, in: bytes)
    }

    /// Reads the record's fields, or tells why it is not an object; syntax errors come first, wherever they are.
    private static func read(_ bytes: UnsafeBufferPointer<UInt8>, into record: inout RecordFields) throws(JSONSyntaxError) -> EventError? {
        var reader = JSONReader(bytes: bytes)
        reader.skipWhitespace()
        guard reader.atObject else {
            let value = try reader.value()
            try reader.expectEnd()
            return EventError(field: "record", problem: .notAnObject, reason: "expected a JSON object, got \(value.typeName)")
        }
        try record.read(&reader)
        try reader.expectEnd()
        return nil
    }

    private static func event(from record: RecordFields, in bytes: UnsafeBufferPointer<UInt8>) throws(EventError) -> Event {
        let kind = try eventKind(record, in: bytes)
        let userID = try optionalString(record, .userId, in: bytes)
        let anonymousID = try optionalString(record, .anonymousId, in: bytes)
        guard let customerID = userID ?? anonymousID else {
            throw EventError(field: "userId", problem: .missing, reason: "missing: a record needs a userId or an anonymousId")
        }
        let messageID = try requiredString(record, .messageId, in: bytes)
        let timestamp = try eventTime(record, in: bytes)
        // Every field is worked out before the event is made: an event made and then changed was
        // copied twice, each of its strings and objects retained and released again.
        var name: String?
        var groupID: String?
        var previousID: String?
        switch kind {
        case .track:
            name = try requiredString(record, .event, in: bytes)
        case .page, .screen:
            name = try optionalString(record, .name, in: bytes)
        case .group:
            groupID = try requiredString(record, .groupId, in: bytes)
        case .alias:
            guard userID != nil else { throw EventError(field: "userId", problem: .missing, reason: "missing: an alias call needs the userId it links to") }
            previousID = try requiredString(record, .previousId, in: bytes)
        case .identify:
            break
        }
        var traits = try packedTraits(record)
        // `context` is read only for this: most records carry a large one that nothing else needs.
        if kind == .identify, !traits.hasMember(named: "timezone"), let context = record.context,
            let timezone = (try? JSONReader.parse(UnsafeBufferPointer(rebasing: bytes[context])))?.value(at: ["timezone"])?.string
        {
            traits["timezone"] = .string(timezone)
        }
        return Event(
            kind: kind, customerID: customerID, userID: userID, anonymousID: anonymousID, messageID: messageID,
            timestamp: timestamp, name: name, properties: try optionalProperties(record), traits: traits,
            groupID: groupID, previousID: previousID)
    }

    /// The record's `type`, matched on its bytes when it is a plain string: no String is made of it.
    private static func eventKind(_ record: RecordFields, in bytes: UnsafeBufferPointer<UInt8>) throws(EventError) -> Event.Kind {
        if case .text(let range)? = record[.type], let kind = Event.Kind.named(UnsafeBufferPointer(rebasing: bytes[range])) { return kind }
        let typeName = try requiredString(record, .type, in: bytes)
        guard let kind = Event.Kind(rawValue: typeName) else {
            throw EventError(
                field: "type", problem: .unknownType,
                reason: "unknown event type \"\(typeName)\"; expected one of \(Event.Kind.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        return kind
    }

    private static func eventTime(_ record: RecordFields, in bytes: UnsafeBufferPointer<UInt8>) throws(EventError) -> Timestamp {
        for field in RecordFields.Field.times {
            switch record[field] {
            case nil, .value(.null)?:
                continue
            case .text(let range)?:
                let text = UnsafeBufferPointer(rebasing: bytes[range])
                guard let time = ISO8601.parse(bytes: text) else {
                    throw EventError(field: field.name, problem: .badTime, reason: "not an ISO-8601 date-time: \"\(String(decoding: text, as: UTF8.self))\"")
                }
                return time
            case .value(.string(let text))?:
                guard let time = ISO8601.parse(text) else {
                    throw EventError(field: field.name, problem: .badTime, reason: "not an ISO-8601 date-time: \"\(text)\"")
                }
                return time
            case .value(let value)?:
                throw EventError(field: field.name, problem: .wrongType, reason: "expected an ISO-8601 date-time string, got \(value.typeName)")
            }
        }
        throw EventError(field: "timestamp", problem: .missing, reason: "missing: a record needs a timestamp, originalTimestamp or receivedAt")
    }

    private static func requiredString(_ record: RecordFields, _ field: RecordFields.Field, in bytes: UnsafeBufferPointer<UInt8>) throws(EventError) -> String {
        guard let value = try optionalString(record, field, in: bytes) else {
            throw EventError(field: field.name, problem: .missing, reason: "missing")
        }
        return value
    }

    /// The field's text: a plain string is made a String from the record's bytes here, once.
    private static func optionalString(_ record: RecordFields, _ field: RecordFields.Field, in bytes: UnsafeBufferPointer<UInt8>) throws(EventError) -> String? {
        switch record[field] {
        case nil, .value(.null)?: return nil
        case .text(let range)?:
            guard !range.isEmpty else { throw EventError(field: field.name, problem: .empty, reason: "empty string") }
            return String(utf8: UnsafeBufferPointer(rebasing: bytes[range]))
        case .value(.string(let text))?:
            guard !text.isEmpty else { throw EventError(field: field.name, problem: .empty, reason: "empty string") }
            return text
        case .value(let other)?: throw EventError(field: field.name, problem: .wrongType, reason: "expected a string, got \(other.typeName)")
        }
    }

    private static func optionalProperties(_ record: RecordFields) throws(EventError) -> PackedJSONObject {
        try record.properties.packed(field: "properties")
    }

    private static func packedTraits(_ record: RecordFields) throws(EventError) -> PackedJSONObject {
        try record.traits.packed(field: "traits")
    }
}

/// The members of a record that an event is made of, read in one pass without a tree for the
/// record: the first of each name counts, as a lookup would find it; any other member is checked
/// and skipped.
private struct RecordFields {
    enum Field: Int {
        case type, userId, anonymousId, messageId, event, name, properties, traits, groupId, previousId
        case timestamp, originalTimestamp, receivedAt, context

        /// The event times, in order of preference.
        static let times: [Field] = [.timestamp, .originalTimestamp, .receivedAt]
        /// The field a key names, by its length and a byte, then checked whole. Each branch
        /// names its candidate, so that its key is a constant and the check a few word compares.
        static func named(_ key: UnsafeBufferPointer<UInt8>) -> Field? {
            guard let start = key.baseAddress else { return nil }
            @inline(__always) func check(_ field: Field) -> Field? {
                memcmpEqual(field.key.utf8Start, start, key.count) ? field : nil
            }
            switch key.count {
            case 4: return start[0] == UInt8(ascii: "t") ? check(.type) : check(.name)
            case 5: return check(.event)
            case 6: return start[0] == UInt8(ascii: "u") ? check(.userId) : check(.traits)
            case 7: return start[0] == UInt8(ascii: "g") ? check(.groupId) : check(.context)
            case 9: return start[0] == UInt8(ascii: "m") ? check(.messageId) : check(.timestamp)
            case 10:
                if start[0] == UInt8(ascii: "r") { return check(.receivedAt) }
                return start[2] == UInt8(ascii: "o") ? check(.properties) : check(.previousId)
            case 11: return check(.anonymousId)
            case 17: return check(.originalTimestamp)
            default: return nil
            }
        }

        var name: String { key.withUTF8Buffer { String(decoding: $0, as: UTF8.self) } }

        /// The key as bytes, to compare with a record's keys without making a String of each.
        var key: StaticString {
            @inline(__always) get {
                switch self {
                case .type: "type"
                case .userId: "userId"
                case .anonymousId: "anonymousId"
                case .messageId: "messageId"
                case .event: "event"
                case .name: "name"
                case .properties: "properties"
                case .traits: "traits"
                case .groupId: "groupId"
                case .previousId: "previousId"
                case .timestamp: "timestamp"
                case .originalTimestamp: "originalTimestamp"
                case .receivedAt: "receivedAt"
                case .context: "context"
                }
            }
        }
    }

    /// A field's value as found: where a string without escapes stands in the record (nearly
    /// every string), made a String only if the event needs it, or any other value, decoded.
    enum Found {
        case text(Range<Int>)
        case value(JSONValue)
    }

    /// `properties` or `traits` as found: packed text when it is an object, anything else decoded.
    enum FoundObject {
        case packed(PackedJSONObject)
        case other(JSONValue)
    }

    private var type, userId, anonymousId, messageId, event, name, groupId, previousId: Found?
    private var timestamp, originalTimestamp, receivedAt: Found?
    private(set) var properties: FoundObject?
    private(set) var traits: FoundObject?
    /// Where the `context` object stands in the record, read only if it is needed.
    var context: Range<Int>?
    /// Bit `field.rawValue` for each field already read: a later member of the same name is
    /// skipped. A bit test, where asking the subscript would copy the record and the value out.
    private var seen: UInt16 = 0

    /// A field other than `properties`, `traits` and `context`.
    subscript(field: Field) -> Found? {
        @inline(__always) get {
            switch field {
            case .type: type
            case .userId: userId
            case .anonymousId: anonymousId
            case .messageId: messageId
            case .event: event
            case .name: name
            case .groupId: groupId
            case .previousId: previousId
            case .timestamp: timestamp
            case .originalTimestamp: originalTimestamp
            case .receivedAt: receivedAt
            case .properties, .traits, .context: nil
            }
        }
        set {
            switch field {
            case .type: type = newValue
            case .userId: userId = newValue
            case .anonymousId: anonymousId = newValue
            case .messageId: messageId = newValue
            case .event: event = newValue
            case .name: name = newValue
            case .groupId: groupId = newValue
            case .previousId: previousId = newValue
            case .timestamp: timestamp = newValue
            case .originalTimestamp: originalTimestamp = newValue
            case .receivedAt: receivedAt = newValue
            case .properties, .traits, .context: break
            }
        }
    }

    /// Inlined into the decoder's one caller, where the reader is a local: about 100 instructions
    /// fewer a record.
    @inline(__always)
    mutating func read(_ reader: inout JSONReader) throws(JSONSyntaxError) {
        try reader.beginObject()
        while let key = try reader.nextMember() {
            guard let field = Self.field(key, reader), seen & 1 << field.rawValue == 0 else {
                try reader.skipValue()
                continue
            }
            seen |= 1 << field.rawValue
            switch field {
            case .context:
                let start = reader.index
                try reader.skipValue()
                context = start..<reader.index
            case .properties:
                properties = try Self.object(&reader)
            case .traits:
                traits = try Self.object(&reader)
            default:
                if reader.atString {
                    let text = try reader.rawString()
                    self[field] = text.escaped ? .value(.string(reader.text(of: text))) : .text(text.range)
                } else {
                    self[field] = .value(try reader.value())
                }
            }
        }
    }

    private static func object(_ reader: inout JSONReader) throws(JSONSyntaxError) -> FoundObject {
        reader.atObject ? .packed(try reader.packedObject()) : .other(try reader.value())
    }

    @inline(__always)
    private static func field(_ key: JSONReader.RawString, _ reader: JSONReader) -> Field? {
        guard key.escaped else { return Field.named(reader.bytes(of: key)) }
        var text = reader.text(of: key)
        return text.withUTF8 { Field.named($0) }
    }
}

extension RecordFields.FoundObject? {
    /// The object member `field` as packed text: empty when absent or null.
    fileprivate func packed(field: String) throws(EventError) -> PackedJSONObject {
        switch self {
        case nil, .other(.null)?: return PackedJSONObject()
        case .packed(let packed)?: return packed
        case .other(let other)?: throw EventError(field: field, problem: .wrongType, reason: "expected an object, got \(other.typeName)")
        }
    }
}
