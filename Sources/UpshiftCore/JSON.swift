/// A JSON value, with object keys kept in their order, so that what is read can be written back
/// byte for byte the same way.
public enum JSONValue: Sendable, Hashable {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object(JSONObject)

    public var string: String? { if case .string(let s) = self { s } else { nil } }
    public var number: Double? { if case .number(let n) = self { n } else { nil } }
    public var bool: Bool? { if case .bool(let b) = self { b } else { nil } }
    public var object: JSONObject? { if case .object(let o) = self { o } else { nil } }

    /// The value at a dotted path of object keys (`quota.api_calls`), if every step is an object.
    public func value(at path: [String]) -> JSONValue? {
        var current = self
        for key in path {
            guard case .object(let object) = current, let next = object[key] else { return nil }
            current = next
        }
        return current
    }

    /// The JSON type's name, for error messages.
    public var typeName: String {
        switch self {
        case .null: "null"
        case .bool: "boolean"
        case .number: "number"
        case .string: "string"
        case .array: "array"
        case .object: "object"
        }
    }
}

/// A JSON object as an ordered list of members. Lookups scan the list: the objects of an event are small.
public struct JSONObject: Sendable, Hashable {
    /// A name and its value. A struct, not a tuple: an array of tuples is freed through the
    /// runtime's generic tuple function, which looks up each field's type for every element,
    /// where a struct has a function of its own. Freeing events' properties took 40% more
    /// instructions with tuples.
    public struct Member: Sendable, Hashable {
        public var key: String
        public var value: JSONValue

        public init(_ key: String, _ value: JSONValue) {
            self.key = key
            self.value = value
        }
    }

    public private(set) var members: [Member]

    public init(members: [Member] = []) { self.members = members }

    public init(_ members: [(key: String, value: JSONValue)]) { self.members = members.map { Member($0.key, $0.value) } }

    /// The value of the first member named `key`.
    public subscript(key: String) -> JSONValue? {
        get {
            // By index: `first(where:)` would copy each member, key and value, to test it.
            for index in members.indices where Self.sameName(members[index].key, key) { return members[index].value }
            return nil
        }
        set {
            if let index = members.indices.first(where: { Self.sameName(members[$0].key, key) }) {
                if let newValue { members[index].value = newValue } else { members.remove(at: index) }
            } else if let newValue {
                members.append(Member(key, newValue))
            }
        }
    }

    public var isEmpty: Bool { members.isEmpty }

    /// Names of different lengths in bytes never match, as JSON compares names byte for byte.
    /// Most names an object is searched through differ in length, and that test costs far less
    /// than a string comparison.
    private static func sameName(_ name: String, _ key: String) -> Bool {
        name.utf8.count == key.utf8.count && name == key
    }

    /// Sets each member of `other` here, replacing a member of the same name in its place or
    /// adding it at the end; room is made once.
    public mutating func merge(_ other: JSONObject) {
        // Into an empty object (a customer's first traits), the other object is the result unless
        // it repeats a name: its members are shared, not set one by one.
        if members.isEmpty, !other.repeatsAName {
            members = other.members
            return
        }
        members.reserveCapacity(members.count + other.members.count)
        for member in other.members { self[member.key] = member.value }
    }

    /// Whether two members have the same name.
    private var repeatsAName: Bool {
        for later in members.indices {
            for earlier in 0..<later where Self.sameName(members[earlier].key, members[later].key) { return true }
        }
        return false
    }

    /// The value at a dotted path of keys, walking nested objects.
    public func value(at path: [String]) -> JSONValue? {
        guard let first = path.first, var current = self[first] else { return nil }
        for key in path.dropFirst() {
            guard case .object(let object) = current, let next = object[key] else { return nil }
            current = next
        }
        return current
    }

    public static func == (lhs: Self, rhs: Self) -> Bool { lhs.members == rhs.members }

    public func hash(into hasher: inout Hasher) {
        for member in members { hasher.combine(member) }
    }
}

/// Why a JSON text could not be read, and where (a byte offset).
public struct JSONSyntaxError: Error, Sendable, Hashable, CustomStringConvertible {
    public var offset: Int
    public var reason: String
    public var description: String { "invalid JSON at byte \(offset): \(reason)" }
}

/// A strict JSON reader (RFC 8259) over UTF-8 bytes, with a nesting limit.
///
/// Besides building a ``JSONValue``, it can walk an object member by member and skip values it
/// does not need, with the same checks and the same errors: the event decoder reads the fields
/// of a record that way, without a tree for the record itself.
public struct JSONReader {
    private let bytes: UnsafeBufferPointer<UInt8>
    private(set) var index = 0
    private var depth = 0
    /// Between ``beginObject()`` and the first ``nextMember()``: no comma comes before the name.
    private var atObjectStart = false
    private static let maximumDepth = 64

    public static func parse(_ text: String) throws(JSONSyntaxError) -> JSONValue {
        var text = text
        return try text.withUTF8 { bytes in Result { () throws(JSONSyntaxError) in try parse(bytes) } }.get()
    }

    public static func parse(_ bytes: UnsafeBufferPointer<UInt8>) throws(JSONSyntaxError) -> JSONValue {
        var reader = JSONReader(bytes: bytes)
        reader.skipWhitespace()
        let value = try reader.value()
        try reader.expectEnd()
        return value
    }

    init(bytes: UnsafeBufferPointer<UInt8>) { self.bytes = bytes }

    /// A string as it stands in the text, between its quotes: decoded only when asked.
    struct RawString {
        var range: Range<Int>
        /// Whether it holds escapes, so that its bytes are not its text.
        var escaped: Bool
    }

    private func error(_ reason: String) -> JSONSyntaxError { JSONSyntaxError(offset: index, reason: reason) }

    mutating func skipWhitespace() {
        while index < bytes.count {
            switch bytes[index] {
            case 0x20, 0x0A, 0x0D, 0x09: index += 1
            default: return
            }
        }
    }

    /// After the value: only whitespace may follow.
    mutating func expectEnd() throws(JSONSyntaxError) {
        skipWhitespace()
        guard index == bytes.count else { throw error("unexpected text after the value") }
    }

    /// Whether the next value is an object, without reading it.
    var atObject: Bool { index < bytes.count && bytes[index] == UInt8(ascii: "{") }

    /// Whether the next value is a string, without reading it.
    var atString: Bool { index < bytes.count && bytes[index] == UInt8(ascii: "\"") }

    mutating func value() throws(JSONSyntaxError) -> JSONValue {
        guard index < bytes.count else { throw error("unexpected end of input") }
        switch bytes[index] {
        case UInt8(ascii: "{"): return .object(try object())
        case UInt8(ascii: "["): return .array(try array())
        case UInt8(ascii: "\""): return .string(text(of: try rawString()))
        case UInt8(ascii: "t"): try literal("true"); return .bool(true)
        case UInt8(ascii: "f"): try literal("false"); return .bool(false)
        case UInt8(ascii: "n"): try literal("null"); return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return .number(try number())
        default: throw error("unexpected character '\(Character(Unicode.Scalar(bytes[index])))'")
        }
    }

    /// Reads past the next value, checking it as ``value()`` would, and builds nothing.
    ///
    /// One loop, with the containers open inside the value in a bit mask, rather than a call per
    /// value: the decoder skips `context`, often a record's largest object, this way. Each step
    /// is the one ``value()`` takes, with the same checks and errors at the same places.
    mutating func skipValue() throws(JSONSyntaxError) {
        // Bit `n`: whether the container `n` levels in from the innermost is an object. Deeper
        // than 64 levels ``enter()`` throws first, so 64 bits hold them all.
        var objects: UInt64 = 0
        var open = 0
        while true {
            // A value starts here.
            guard index < bytes.count else { throw error("unexpected end of input") }
            switch bytes[index] {
            case UInt8(ascii: "{"):
                try beginObject()
                if try nextMember() != nil {
                    objects = objects << 1 | 1
                    open += 1
                    continue
                }
            case UInt8(ascii: "["):
                try enter()
                index += 1
                skipWhitespace()
                if index < bytes.count, bytes[index] == UInt8(ascii: "]") {
                    index += 1
                    depth -= 1
                } else {
                    skipWhitespace()
                    objects <<= 1
                    open += 1
                    continue
                }
            case UInt8(ascii: "\""): _ = try rawString()
            case UInt8(ascii: "t"): try literal("true")
            case UInt8(ascii: "f"): try literal("false")
            case UInt8(ascii: "n"): try literal("null")
            case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): _ = try number()
            default: throw error("unexpected character '\(Character(Unicode.Scalar(bytes[index])))'")
            }
            // After a value: close the containers it ends, up to one with another member or element.
            while true {
                guard open > 0 else { return }
                if objects & 1 == 1 {
                    if try nextMember() != nil { break }
                } else {
                    skipWhitespace()
                    guard index < bytes.count else { throw error("unexpected end of input in an array") }
                    if bytes[index] == UInt8(ascii: ",") {
                        index += 1
                        skipWhitespace()
                        break
                    }
                    guard bytes[index] == UInt8(ascii: "]") else { throw error("expected ',' or ']'") }
                    index += 1
                    depth -= 1
                }
                objects >>= 1
                open -= 1
            }
        }
    }

    private mutating func literal(_ word: StaticString) throws(JSONSyntaxError) {
        let count = word.utf8CodeUnitCount
        guard index + count <= bytes.count,
            memcmpEqual(bytes.baseAddress! + index, word.utf8Start, count)
        else { throw error("invalid literal") }
        index += count
    }

    private mutating func enter() throws(JSONSyntaxError) {
        depth += 1
        if depth > Self.maximumDepth { throw error("nested deeper than \(Self.maximumDepth) levels") }
    }

    private mutating func object() throws(JSONSyntaxError) -> JSONObject {
        var members: [JSONObject.Member] = []
        try beginObject()
        while let key = try nextMember() {
            // Most objects of an event have a few members: one allocation instead of a doubling series.
            if members.isEmpty { members.reserveCapacity(4) }
            members.append(JSONObject.Member(text(of: key), try value()))
        }
        return JSONObject(members: members)
    }

    private mutating func array() throws(JSONSyntaxError) -> [JSONValue] {
        var values: [JSONValue] = []
        try elements { reader throws(JSONSyntaxError) in values.append(try reader.value()) }
        return values
    }

    /// Steps into the object at the reader; ``nextMember()`` then reads its members' names.
    /// A loop over them keeps the reader's place in a register: a closure handed each member
    /// cost reading a record about 5% more instructions.
    @inline(__always)
    mutating func beginObject() throws(JSONSyntaxError) {
        try enter()
        index += 1
        atObjectStart = true
    }

    /// The name of the object's next member, with the reader at its value (which the caller must
    /// read), or nil past the object's end.
    @inline(__always)
    mutating func nextMember() throws(JSONSyntaxError) -> RawString? {
        skipWhitespace()
        if atObjectStart {
            atObjectStart = false
            if index < bytes.count, bytes[index] == UInt8(ascii: "}") { return endObject() }
        } else {
            guard index < bytes.count else { throw error("unexpected end of input in an object") }
            guard bytes[index] == UInt8(ascii: ",") else {
                guard bytes[index] == UInt8(ascii: "}") else { throw error("expected ',' or '}'") }
                return endObject()
            }
            index += 1
            skipWhitespace()
        }
        guard atString else { throw error("expected a member name") }
        let key = try rawString()
        skipWhitespace()
        guard index < bytes.count, bytes[index] == UInt8(ascii: ":") else { throw error("expected ':'") }
        index += 1
        skipWhitespace()
        return key
    }

    private mutating func endObject() -> RawString? {
        index += 1
        depth -= 1
        return nil
    }

    /// Walks the array at the reader; `element` must read each value.
    private mutating func elements(_ element: (inout JSONReader) throws(JSONSyntaxError) -> Void) throws(JSONSyntaxError) {
        try enter()
        defer { depth -= 1 }
        index += 1
        skipWhitespace()
        if index < bytes.count, bytes[index] == UInt8(ascii: "]") {
            index += 1
            return
        }
        while true {
            skipWhitespace()
            try element(&self)
            skipWhitespace()
            guard index < bytes.count else { throw error("unexpected end of input in an array") }
            if bytes[index] == UInt8(ascii: ",") {
                index += 1
                continue
            }
            guard bytes[index] == UInt8(ascii: "]") else { throw error("expected ',' or ']'") }
            index += 1
            return
        }
    }

    /// Reads past the string at the reader, checking its escapes and control characters.
    ///
    /// Inlined, for a string without escapes (nearly all): a call for each of the twenty strings
    /// of a record cost about a third of reading them.
    @inline(__always)
    mutating func rawString() throws(JSONSyntaxError) -> RawString {
        let start = index + 1
        index = nextByteToEscape(in: bytes, from: start)
        guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") else { return try rawString(from: start) }
        index += 1
        return RawString(range: start..<(index - 1), escaped: false)
    }

    /// The rest of ``rawString()``, from the first byte to escape (or the end) of the string that
    /// starts at `start`.
    @inline(never)
    private mutating func rawString(from start: Int) throws(JSONSyntaxError) -> RawString {
        var escaped = false
        while true {
            guard index < bytes.count else { throw error("unterminated string") }
            let byte = bytes[index]
            if byte == UInt8(ascii: "\"") {
                index += 1
                return RawString(range: start..<(index - 1), escaped: escaped)
            }
            if byte < 0x20 { throw error("control character in a string") }
            index += 1
            escaped = true
            guard index < bytes.count else { throw error("unterminated escape") }
            let escape = bytes[index]
            index += 1
            switch escape {
            case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"), UInt8(ascii: "b"), UInt8(ascii: "f"),
                UInt8(ascii: "n"), UInt8(ascii: "r"), UInt8(ascii: "t"):
                break
            case UInt8(ascii: "u"):
                let code = try hex4()
                if (0xD800..<0xDC00).contains(code) {
                    guard index + 1 < bytes.count, bytes[index] == UInt8(ascii: "\\"), bytes[index + 1] == UInt8(ascii: "u")
                    else { throw error("unpaired surrogate") }
                    index += 2
                    guard (0xDC00..<0xE000).contains(try hex4()) else { throw error("unpaired surrogate") }
                } else if (0xDC00..<0xE000).contains(code) {
                    throw error("unpaired surrogate")
                }
            default: throw error("invalid escape")
            }
            index = nextByteToEscape(in: bytes, from: index)
        }
    }

    /// The bytes from `start` to where the reader stands.
    func bytes(from start: Int) -> UnsafeBufferPointer<UInt8> { UnsafeBufferPointer(rebasing: bytes[start..<index]) }

    /// The bytes from where the reader stands to the end.
    var rest: UnsafeBufferPointer<UInt8> { UnsafeBufferPointer(rebasing: bytes[index...]) }

    /// Moves past `count` bytes, a whole value that the caller has checked.
    mutating func skip(_ count: Int) { index += count }

    /// The bytes of a string read by ``rawString()``, escapes and all.
    func bytes(of raw: RawString) -> UnsafeBufferPointer<UInt8> { UnsafeBufferPointer(rebasing: bytes[raw.range]) }

    /// The text of a string read by ``rawString()``, its escapes decoded (they were checked then).
    func text(of raw: RawString) -> String {
        guard raw.escaped else { return String(utf8: bytes(of: raw)) }
        var decoded: [UInt8] = []
        decoded.reserveCapacity(raw.range.count)
        var index = raw.range.lowerBound
        func hex4(_ at: Int) -> UInt32 {
            (at..<at + 4).reduce(0) { value, position in value << 4 | UInt32(Self.hexDigit(bytes[position])!) }
        }
        while index < raw.range.upperBound {
            let byte = bytes[index]
            index += 1
            guard byte == UInt8(ascii: "\\") else {
                decoded.append(byte)
                continue
            }
            let escape = bytes[index]
            index += 1
            switch escape {
            case UInt8(ascii: "b"): decoded.append(0x08)
            case UInt8(ascii: "f"): decoded.append(0x0C)
            case UInt8(ascii: "n"): decoded.append(0x0A)
            case UInt8(ascii: "r"): decoded.append(0x0D)
            case UInt8(ascii: "t"): decoded.append(0x09)
            case UInt8(ascii: "u"):
                var code = hex4(index)
                index += 4
                if (0xD800..<0xDC00).contains(code) {
                    code = 0x10000 + ((code - 0xD800) << 10) + (hex4(index + 2) - 0xDC00)
                    index += 6
                }
                decoded.append(contentsOf: String(Character(Unicode.Scalar(code)!)).utf8)
            default: decoded.append(escape)
            }
        }
        return String(decoding: decoded, as: UTF8.self)
    }

    private mutating func hex4() throws(JSONSyntaxError) -> UInt32 {
        guard index + 4 <= bytes.count else { throw error("short \\u escape") }
        var value: UInt32 = 0
        for _ in 0..<4 {
            guard let digit = Self.hexDigit(bytes[index]) else { throw error("invalid \\u escape") }
            value = value << 4 | UInt32(digit)
            index += 1
        }
        return value
    }

    private static func hexDigit(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - 48
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - 87
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - 55
        default: nil
        }
    }

    private mutating func number() throws(JSONSyntaxError) -> Double {
        let start = index
        var integer: Int64 = 0
        var negative = false
        if bytes[index] == UInt8(ascii: "-") {
            negative = true
            index += 1
        }
        let digitsStart = index
        while index < bytes.count, bytes[index] >= 48, bytes[index] <= 57 {
            if index - digitsStart < 18 { integer = integer * 10 + Int64(bytes[index] - 48) }
            index += 1
        }
        let digits = index - digitsStart
        guard digits > 0 else { throw error("invalid number") }
        if digits > 1 && bytes[digitsStart] == UInt8(ascii: "0") { throw error("leading zero in a number") }
        let simple = index == bytes.count || (bytes[index] != UInt8(ascii: ".") && bytes[index] | 0x20 != UInt8(ascii: "e"))
        if simple && digits < 18 { return Double(negative ? -integer : integer) }
        if index < bytes.count, bytes[index] == UInt8(ascii: ".") {
            index += 1
            let fractionStart = index
            while index < bytes.count, bytes[index] >= 48, bytes[index] <= 57 { index += 1 }
            guard index > fractionStart else { throw error("invalid number") }
        }
        if index < bytes.count, bytes[index] | 0x20 == UInt8(ascii: "e") {
            index += 1
            if index < bytes.count, bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-") { index += 1 }
            let exponentStart = index
            while index < bytes.count, bytes[index] >= 48, bytes[index] <= 57 { index += 1 }
            guard index > exponentStart else { throw error("invalid number") }
        }
        let text = String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<index]), as: UTF8.self)
        guard let value = Double(text), value.isFinite else { throw error("number out of range") }
        return value
    }
}

/// Where the next quote, backslash or control character is at or after `position` (the end if
/// there is none): the bytes a JSON string must escape, and where a reader must look closer. It
/// looks at eight bytes at a time: most bytes of a string need no look of their own. With
/// `orNonASCII`, a byte of a multi-byte character stops it too.
@inline(__always)
func nextByteToEscape(in bytes: UnsafeBufferPointer<UInt8>, from position: Int, orNonASCII: Bool = false) -> Int {
    let ones: UInt64 = 0x0101_0101_0101_0101
    var position = position
    if let base = bytes.baseAddress {
        let raw = UnsafeRawPointer(base)
        while position + 8 <= bytes.count {
            let word = UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: position, as: UInt64.self))
            let quote = word ^ (ones &* 0x22)
            let backslash = word ^ (ones &* 0x5C)
            // The classic tests for a byte below 0x20 and for a zero byte (after the xors): exact
            // for the lowest such byte, which is the one wanted.
            let special = (((word &- ones &* 0x20) & ~word) | ((quote &- ones) & ~quote) | ((backslash &- ones) & ~backslash) | (orNonASCII ? word : 0))
                & (ones &* 0x80)
            if special != 0 { return position + special.trailingZeroBitCount / 8 }
            position += 8
        }
    }
    while position < bytes.count {
        let byte = bytes[position]
        if byte < 0x20 || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") || (orNonASCII && byte >= 0x80) { return position }
        position += 1
    }
    return position
}

/// Whether `count` bytes at `a` and `b` are equal. Compared a word at a time, the last word
/// overlapping the one before when the count is not a multiple of its size: the keys and names
/// compared here are a few bytes long, and a byte loop over them cost decoding about 3% more
/// instructions.
@inline(__always)
func memcmpEqual(_ a: UnsafePointer<UInt8>, _ b: UnsafePointer<UInt8>, _ count: Int) -> Bool {
    let (a, b) = (UnsafeRawPointer(a), UnsafeRawPointer(b))
    func word<T: FixedWidthInteger>(_ offset: Int, _: T.Type) -> Bool {
        a.loadUnaligned(fromByteOffset: offset, as: T.self) == b.loadUnaligned(fromByteOffset: offset, as: T.self)
    }
    switch count {
    case 8...:
        var offset = 0
        while offset + 8 < count {
            guard word(offset, UInt64.self) else { return false }
            offset += 8
        }
        return word(count - 8, UInt64.self)
    case 4...:
        return word(0, UInt32.self) && word(count - 4, UInt32.self)
    case 2...:
        return word(0, UInt16.self) && word(count - 2, UInt16.self)
    case 1:
        return a.load(as: UInt8.self) == b.load(as: UInt8.self)
    default:
        return true
    }
}

extension String {
    /// The text of UTF-8 bytes, an ill-formed sequence repaired as `String(decoding:as:)` repairs
    /// it. A text of up to 15 bytes (most names, ids and values in an event) is stored within the
    /// String: it is built in place, at about half the cost of `String(decoding:as:)`, which
    /// checks the bytes and then copies them in a loop of its own.
    @inline(__always)
    init(utf8 bytes: UnsafeBufferPointer<UInt8>) {
        guard (1...15).contains(bytes.count), let source = bytes.baseAddress else {
            self.init(decoding: bytes, as: UTF8.self)
            return
        }
        self.init(unsafeUninitializedCapacity: bytes.count) { text in
            text.baseAddress!.initialize(from: source, count: bytes.count)
            return bytes.count
        }
    }
}

/// Writes JSON with members in the order given, so that equal values give identical bytes.
public struct JSONWriter {
    public private(set) var bytes: [UInt8] = []

    /// Room is made at once for an output record (about 400 bytes), so that most are written
    /// without the buffer growing.
    public init() { bytes.reserveCapacity(512) }

    /// Writes on after `bytes`, which it takes over: a caller that embeds JSON in a buffer of its
    /// own gets it back with ``take()``, without a copy either way.
    init(continuing bytes: inout [UInt8]) { swap(&self.bytes, &bytes) }

    /// Hands the bytes back, leaving the writer empty.
    mutating func take() -> [UInt8] {
        var taken: [UInt8] = []
        swap(&taken, &bytes)
        return taken
    }

    public var text: String { String(decoding: bytes, as: UTF8.self) }

    public mutating func write(_ value: JSONValue) {
        switch value {
        case .null: append("null")
        case .bool(let b): append(b ? "true" : "false")
        case .number(let n): write(number: n)
        case .string(let s): write(string: s)
        // By index: iterating would copy (and retain) each element or member.
        case .array(let elements):
            bytes.append(UInt8(ascii: "["))
            for index in elements.indices {
                if index > 0 { bytes.append(UInt8(ascii: ",")) }
                write(elements[index])
            }
            bytes.append(UInt8(ascii: "]"))
        case .object(let object):
            bytes.append(UInt8(ascii: "{"))
            let members = object.members
            for index in members.indices {
                if index > 0 { bytes.append(UInt8(ascii: ",")) }
                write(string: members[index].key)
                bytes.append(UInt8(ascii: ":"))
                write(members[index].value)
            }
            bytes.append(UInt8(ascii: "}"))
        }
    }

    /// Integers without a fraction; others in Swift's shortest round-trip form; `null` for an
    /// infinity or NaN, which JSON cannot hold (a sum of huge amounts can overflow to one).
    public mutating func write(number: Double) {
        if !number.isFinite {
            append("null")
        } else if number.rounded() == number, abs(number) < 1e15 {
            write(integer: Int64(number))
        } else if !write(decimal: number) {
            append("\(number)")
        }
    }

    /// Writes a number of at most three decimals (a ratio, a price, a threshold: most of those an
    /// output's evidence holds) as Swift's shortest form would, without making its String, which
    /// cost about 1,000 instructions a number. False, having written nothing, for any other.
    ///
    /// The decimal with the fewest fraction digits whose nearest `Double` is `number` is that
    /// form: any other decimal with as many digits is at least 0.001 away, far more than the gap
    /// between two doubles below 10^12, so it rounds elsewhere; and it ends in a digit other than
    /// zero, or one digit fewer would have been found first.
    private mutating func write(decimal number: Double) -> Bool {
        guard abs(number) < 1e12 else { return false }
        var scale = 1.0
        for digits in 1...3 {
            scale *= 10
            let scaled = (abs(number) * scale).rounded()
            guard scaled / scale == abs(number) else { continue }
            var fraction = Int64(scaled) % Int64(scale)
            if number < 0 { bytes.append(UInt8(ascii: "-")) }
            write(integer: Int64(scaled) / Int64(scale))
            append(count: digits + 1) { out in
                out[0] = UInt8(ascii: ".")
                for position in stride(from: digits, through: 1, by: -1) {
                    out[position] = UInt8(ascii: "0") + UInt8(fraction % 10)
                    fraction /= 10
                }
            }
            return true
        }
        return false
    }

    /// The digits straight into the bytes, without making a String of them.
    private mutating func write(integer: Int64) {
        var magnitude = integer.magnitude
        var digits = 1
        var power: UInt64 = 10
        while digits < 20, magnitude >= power {
            digits += 1
            power = power &* 10
        }
        let sign = integer < 0 ? 1 : 0
        append(count: sign + digits) { out in
            if sign == 1 { out[0] = UInt8(ascii: "-") }
            for position in stride(from: sign + digits - 1, through: sign, by: -1) {
                out[position] = UInt8(ascii: "0") + UInt8(magnitude % 10)
                magnitude /= 10
            }
        }
    }

    public mutating func write(string: String) {
        // In place, without the copy `withUTF8` needs (a retain and a release); a string not
        // stored as UTF-8 (bridged, on Apple platforms) is copied once.
        guard string.utf8.withContiguousStorageIfAvailable({ write(utf8: $0) }) != nil else {
            var copy = string
            return copy.withUTF8 { write(utf8: $0) }
        }
    }

    /// A string's UTF-8 bytes, quoted and escaped.
    private mutating func write(utf8: UnsafeBufferPointer<UInt8>) {
        var start = nextByteToEscape(in: utf8, from: 0)
        // Most strings need no escape: quotes and bytes go in at once.
        guard start < utf8.count else {
            return append(count: utf8.count + 2) { out in
                out[0] = UInt8(ascii: "\"")
                if let text = utf8.baseAddress { (out + 1).update(from: text, count: utf8.count) }
                out[utf8.count + 1] = UInt8(ascii: "\"")
            }
        }
        // Runs of plain bytes are copied whole; only quotes, backslashes and controls are escaped.
        bytes.append(UInt8(ascii: "\""))
        append(bytes: UnsafeBufferPointer(rebasing: utf8[..<start]))
        while start < utf8.count {
            escape(utf8[start])
            let index = nextByteToEscape(in: utf8, from: start + 1)
            append(bytes: UnsafeBufferPointer(rebasing: utf8[(start + 1)..<index]))
            start = index
        }
        bytes.append(UInt8(ascii: "\""))
    }

    /// Appends `count` bytes, which `write` puts at the pointer it is given. Room is made once
    /// and the bytes written in place: `append(contentsOf:)` for each piece cost writing an
    /// output about three times the instructions.
    @inline(__always)
    mutating func append(count: Int, _ write: (UnsafeMutablePointer<UInt8>) -> Void) {
        bytes.append(addingCapacity: count) { span in
            span.withUnsafeMutableBufferPointer { room, initialized in
                write(room.baseAddress!)
                initialized = count
            }
        }
    }

    private mutating func escape(_ byte: UInt8) {
        switch byte {
        case UInt8(ascii: "\""): append("\\\"")
        case UInt8(ascii: "\\"): append("\\\\")
        case 0x0A: append("\\n")
        case 0x0D: append("\\r")
        case 0x09: append("\\t")
        default:
            let hex = String(byte, radix: 16)
            append("\\u" + String(repeating: "0", count: 4 - hex.count) + hex)
        }
    }

    mutating func append(_ text: String) { bytes.append(contentsOf: text.utf8) }

    mutating func append(byte: UInt8) { bytes.append(byte) }

    mutating func append(bytes other: UnsafeBufferPointer<UInt8>) {
        guard let source = other.baseAddress, !other.isEmpty else { return }
        append(count: other.count) { out in out.update(from: source, count: other.count) }
    }

    mutating func append(_ time: Timestamp) { ISO8601.append(time, to: &self) }
}

extension JSONValue: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral, ExpressibleByFloatLiteral,
    ExpressibleByBooleanLiteral, ExpressibleByNilLiteral
{
    public init(stringLiteral value: String) { self = .string(value) }
    public init(integerLiteral value: Int) { self = .number(Double(value)) }
    public init(floatLiteral value: Double) { self = .number(value) }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(nilLiteral: ()) { self = .null }
}

extension JSONObject: ExpressibleByDictionaryLiteral {
    public init(dictionaryLiteral elements: (String, JSONValue)...) {
        self.init(members: elements.map { Member($0.0, $0.1) })
    }
}
