/// A JSON object kept as its compact text in one block of memory: how a customer's traits, and an
/// event's properties and traits, are held.
///
/// As a ``JSONObject``, eight typical traits took about 1,200 bytes in half a dozen blocks (the
/// member list, each nested object's, each string too long to be held inline); as text they take
/// about 230, in one. With 100,000 customers that is the difference between state that fits in
/// memory near the processor and state that does not. Reading a value scans the text, which suits
/// values read when a workflow is entered or a message goes out; what every event needs is kept
/// apart (a ratio trigger's limit is, in ``WorkflowMemory``).
public struct PackedJSONObject: Sendable, Hashable, ExpressibleByDictionaryLiteral {
    /// The object as ``JSONWriter`` writes it; empty, not `{}`, for an object without members.
    public private(set) var text: [UInt8]

    public init(_ object: JSONObject = JSONObject()) {
        guard !object.isEmpty else {
            text = []
            return
        }
        var writer = JSONWriter()
        writer.write(.object(object))
        // Copied to a block of its own size: the writer's has room to spare, which every
        // customer would keep.
        text = writer.bytes.withUnsafeBufferPointer { Array($0) }
    }

    public init(dictionaryLiteral members: (String, JSONValue)...) {
        self.init(JSONObject(members: members.map { JSONObject.Member($0.0, $0.1) }))
    }

    /// An object of text that ``JSONWriter`` wrote, as this type keeps it (empty for no members).
    init(text: [UInt8]) { self.text = text }

    public var isEmpty: Bool { text.isEmpty }

    /// The whole object, read from the text.
    public var object: JSONObject { text.withUnsafeBufferPointer(Self.object) }

    /// The object whose packed text is `text`.
    static func object(in text: UnsafeBufferPointer<UInt8>) -> JSONObject {
        guard !text.isEmpty else { return JSONObject() }
        // The text was written by JSONWriter from an object, so it reads back as one.
        guard case .object(let object)? = try? JSONReader.parse(text) else { preconditionFailure("packed text is not an object") }
        return object
    }

    /// The value at a path of keys into nested objects, found by scanning the text; nil when a
    /// key is missing or a step is not an object. The first member of each name counts, as in
    /// ``JSONObject``. Only the value found is built.
    public func value(at path: ArraySlice<String>) -> JSONValue? {
        text.withUnsafeBufferPointer { Self.value(at: path, in: $0) }
    }

    public func value(at path: [String]) -> JSONValue? { value(at: path[...]) }

    /// The value at `path` in the object whose packed text is `text`: see ``value(at:)-(ArraySlice<String>)``.
    static func value(at path: some Collection<String>, in text: UnsafeBufferPointer<UInt8>) -> JSONValue? {
        guard !text.isEmpty, !path.isEmpty else { return nil }
        var start = 0
        for name in path {
            guard text[start] == UInt8(ascii: "{"), let found = member(name, ofObjectAt: start, in: text) else { return nil }
            start = found
        }
        return value(at: start, in: text)
    }

    /// The object's members as places in its text, found in one pass: for a run of lookups (the
    /// facts an `identify` works out), each of which would otherwise scan the text from its start.
    struct Members {
        let object: PackedJSONObject
        private var places: [(name: Range<Int>, value: Range<Int>)] = []

        init(_ object: PackedJSONObject) {
            self.object = object
            places = object.text.withUnsafeBufferPointer { bytes in
                var places: [(name: Range<Int>, value: Range<Int>)] = []
                guard !bytes.isEmpty else { return places }
                places.reserveCapacity(16)
                var index = 1
                while bytes[index] != UInt8(ascii: "}") {
                    let nameEnd = PackedJSONObject.end(ofStringAt: index, in: bytes)
                    let valueEnd = PackedJSONObject.end(ofValueAt: nameEnd + 1, in: bytes)
                    places.append((index + 1..<nameEnd - 1, nameEnd + 1..<valueEnd))
                    index = valueEnd
                    if bytes[index] == UInt8(ascii: ",") { index += 1 }
                }
                return places
            }
        }

        /// Whether two members have the same name.
        var repeatsAName: Bool {
            object.text.withUnsafeBufferPointer { bytes in
                places.indices.contains { later in
                    let name = places[later].name
                    return places[..<later].contains { earlier in
                        earlier.name.count == name.count
                            && (name.isEmpty || memcmpEqual(bytes.baseAddress! + earlier.name.lowerBound, bytes.baseAddress! + name.lowerBound, name.count))
                    }
                }
            }
        }

        /// As ``PackedJSONObject/value(at:)-(ArraySlice<String>)``.
        func value(at path: ArraySlice<String>) -> JSONValue? {
            guard let name = path.first else { return nil }
            return object.text.withUnsafeBufferPointer { bytes in
                var name = name
                return name.withUTF8 { name in
                    // A name that stands escaped in the text is left to the scan, which escapes it.
                    guard nextByteToEscape(in: name, from: 0) == name.count else { return PackedJSONObject.value(at: path, in: bytes) }
                    for place in places where place.name.count == name.count {
                        guard name.isEmpty || memcmpEqual(name.baseAddress!, bytes.baseAddress! + place.name.lowerBound, name.count) else { continue }
                        let value = UnsafeBufferPointer(rebasing: bytes[place.value])
                        return path.count == 1 ? PackedJSONObject.value(written: value) : PackedJSONObject.value(at: path.dropFirst(), in: value)
                    }
                    return nil
                }
            }
        }
    }

    // The scans below rely on the text being JSONWriter's: valid, without whitespace, each string
    // escaped the one way the writer escapes it. They check nothing, and need not.

    /// Where the value of the object's first member named `name` starts.
    private static func member(_ name: String, ofObjectAt start: Int, in bytes: UnsafeBufferPointer<UInt8>) -> Int? {
        var name = name
        // A name without a byte to escape (nearly every one) is checked and looked for in one
        // `withUTF8`: the outer nil says it has such a byte.
        let plain = name.withUTF8 { name -> Int?? in
            guard nextByteToEscape(in: name, from: 0) == name.count else { return .none }
            return member(utf8: name, ofObjectAt: start, in: bytes)
        }
        if let plain { return plain }
        // The key stands in the text escaped: compare with the name escaped the same way.
        var writer = JSONWriter()
        writer.write(string: name)
        return writer.bytes.withUnsafeBufferPointer { member(utf8: UnsafeBufferPointer(rebasing: $0.dropFirst().dropLast()), ofObjectAt: start, in: bytes) }
    }

    /// Where the value of the object's first member whose name stands in the text as `name` starts.
    private static func member(utf8 name: UnsafeBufferPointer<UInt8>, ofObjectAt start: Int, in bytes: UnsafeBufferPointer<UInt8>) -> Int? {
        var index = start + 1
        while bytes[index] != UInt8(ascii: "}") {
            let keyEnd = end(ofStringAt: index, in: bytes)
            let keyLength = keyEnd - index - 2
            let valueStart = keyEnd + 1
            if keyLength == name.count, keyLength == 0 || memcmpEqual(name.baseAddress!, bytes.baseAddress! + index + 1, keyLength) {
                return valueStart
            }
            index = end(ofValueAt: valueStart, in: bytes)
            if bytes[index] == UInt8(ascii: ",") { index += 1 }
        }
        return nil
    }

    /// The value that starts at `start`, built.
    private static func value(at start: Int, in bytes: UnsafeBufferPointer<UInt8>) -> JSONValue? {
        value(written: UnsafeBufferPointer(rebasing: bytes[start..<end(ofValueAt: start, in: bytes)]))
    }

    /// The value whose text, as the writer wrote it, is `text`. A string without escapes, an
    /// integer of at most 15 digits and a literal (what traits mostly hold) are read straight
    /// from their bytes; anything else goes to the reader, whose setting up and checking cost
    /// more than reading such a value.
    static func value(written text: UnsafeBufferPointer<UInt8>) -> JSONValue? {
        guard let first = text.first else { return nil }
        switch first {
        case UInt8(ascii: "\""):
            let inner = UnsafeBufferPointer(rebasing: text[1..<(text.count - 1)])
            if nextByteToEscape(in: inner, from: 0) == inner.count { return .string(String(utf8: inner)) }
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            if let integer = integer(written: text) { return .number(Double(integer)) }
        default:
            if text.is("true") { return .bool(true) }
            if text.is("false") { return .bool(false) }
        }
        return try? JSONReader.parse(text)
    }

    /// The integer that `text` is, when it is an optional minus and 1 to 15 digits without a
    /// leading zero (the writer's form; `-0` is written `0`).
    private static func integer(written text: UnsafeBufferPointer<UInt8>) -> Int64? {
        let negative = text[0] == UInt8(ascii: "-")
        let digits = UnsafeBufferPointer(rebasing: text[(negative ? 1 : 0)...])
        guard (1...15).contains(digits.count), digits[0] != UInt8(ascii: "0") || (digits.count == 1 && !negative) else { return nil }
        var value: Int64 = 0
        for digit in digits {
            guard (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(digit) else { return nil }
            value = value * 10 + Int64(digit - UInt8(ascii: "0"))
        }
        return negative ? -value : value
    }

    /// Just past the string whose opening quote is at `start`; runs without escapes are skipped
    /// eight bytes at a time.
    @inline(__always)
    static func end(ofStringAt start: Int, in bytes: UnsafeBufferPointer<UInt8>) -> Int {
        var index = nextByteToEscape(in: bytes, from: start + 1)
        while bytes[index] == UInt8(ascii: "\\") { index = nextByteToEscape(in: bytes, from: index + 2) }
        return index + 1
    }

    /// Just past the value that starts at `start`.
    @inline(__always)
    static func end(ofValueAt start: Int, in bytes: UnsafeBufferPointer<UInt8>) -> Int {
        var index = start
        var depth = 0
        repeat {
            switch bytes[index] {
            case UInt8(ascii: "\""): index = end(ofStringAt: index, in: bytes)
            case UInt8(ascii: "{"), UInt8(ascii: "["):
                depth += 1
                index += 1
            case UInt8(ascii: "}"), UInt8(ascii: "]"):
                depth -= 1
                index += 1
            default:
                // A number or a literal, or a comma or colon inside a container.
                index += 1
                while depth == 0, index < bytes.count, !Self.endsScalar(bytes[index]) { index += 1 }
            }
        } while depth > 0
        return index
    }

    private static func endsScalar(_ byte: UInt8) -> Bool {
        byte == UInt8(ascii: ",") || byte == UInt8(ascii: "}") || byte == UInt8(ascii: "]")
    }

    /// Sets each member of `other` as ``JSONObject/merge(_:)`` does.
    public mutating func merge(_ other: PackedJSONObject) {
        self = merging(other).object
    }

    /// The object with each member of `other` set as ``JSONObject/merge(_:)`` sets it, as
    /// places: what an `identify` reads next. Into an empty object (a customer's first traits)
    /// the other's text is taken as it is, unless it repeats a name; otherwise both are read and
    /// the result written again.
    func merging(_ other: PackedJSONObject) -> Members {
        if isEmpty {
            let members = Members(other)
            if !members.repeatsAName { return members }
        }
        guard !other.isEmpty else { return Members(self) }
        var merged = object
        merged.merge(other.object)
        return Members(PackedJSONObject(merged))
    }

    /// Whether a member is named `name`; no value is built.
    public func hasMember(named name: String) -> Bool {
        text.withUnsafeBufferPointer { !$0.isEmpty && Self.member(name, ofObjectAt: 0, in: $0) != nil }
    }

    /// The value of the first member named `key`: see ``value(at:)-(ArraySlice<String>)``.
    public subscript(key: String) -> JSONValue? {
        get { text.withUnsafeBufferPointer { Self.value(at: CollectionOfOne(key), in: $0) } }
        set {
            var object = self.object
            object[key] = newValue
            self = PackedJSONObject(object)
        }
    }

    /// Where the value that `bytes` start with ends, when it is valid JSON in the form
    /// ``JSONWriter`` writes (no whitespace between tokens, strings of plain ASCII without
    /// escapes, numbers written as integers of at most 15 digits: the writer's form for every
    /// integral value below 10^15) and nested less than 32 levels deep. Nil for anything else,
    /// valid or not, which a reader then judges: this check only ever accepts what it would.
    static func endOfValueAsWritten(in bytes: UnsafeBufferPointer<UInt8>) -> Int? {
        /// Just past the plain string at `index`.
        func string(at index: Int) -> Int? {
            guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") else { return nil }
            let end = nextByteToEscape(in: bytes, from: index + 1, orNonASCII: true)
            return end < bytes.count && bytes[end] == UInt8(ascii: "\"") ? end + 1 : nil
        }
        /// Just past the colon after the member name at `index`.
        func name(at index: Int) -> Int? {
            guard let end = string(at: index), end < bytes.count, bytes[end] == UInt8(ascii: ":") else { return nil }
            return end + 1
        }
        func isDigit(_ index: Int) -> Bool { index < bytes.count && (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[index]) }
        var index = 0
        // Bit `n`: whether the container `n` levels up is an object.
        var objects: UInt32 = 0
        var depth = 0
        while true {
            // A value starts at `index`.
            guard index < bytes.count else { return nil }
            switch bytes[index] {
            case UInt8(ascii: "{"), UInt8(ascii: "["):
                guard depth < 31 else { return nil }
                let isObject = bytes[index] == UInt8(ascii: "{")
                index += 1
                guard index < bytes.count else { return nil }
                if bytes[index] != (isObject ? UInt8(ascii: "}") : UInt8(ascii: "]")) {
                    objects = objects << 1 | (isObject ? 1 : 0)
                    depth += 1
                    if isObject {
                        guard let value = name(at: index) else { return nil }
                        index = value
                    }
                    continue
                }
                index += 1
            case UInt8(ascii: "\""):
                guard let end = string(at: index) else { return nil }
                index = end
            case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
                let digits = bytes[index] == UInt8(ascii: "-") ? index + 1 : index
                // `-0` is written `0`, and `01` is no number.
                guard isDigit(digits), bytes[digits] != UInt8(ascii: "0") || (digits == index && !isDigit(digits + 1)) else { return nil }
                index = digits
                while isDigit(index) { index += 1 }
                // A fraction or an exponent may be written otherwise.
                guard index - digits <= 15, index >= bytes.count || (bytes[index] != UInt8(ascii: ".") && bytes[index] | 0x20 != UInt8(ascii: "e"))
                else { return nil }
            default:
                let literal: StaticString
                switch bytes[index] {
                case UInt8(ascii: "t"): literal = "true"
                case UInt8(ascii: "f"): literal = "false"
                case UInt8(ascii: "n"): literal = "null"
                default: return nil
                }
                guard index + literal.utf8CodeUnitCount <= bytes.count, memcmpEqual(bytes.baseAddress! + index, literal.utf8Start, literal.utf8CodeUnitCount)
                else { return nil }
                index += literal.utf8CodeUnitCount
            }
            // After a value: close what it ends, then on to the next member or element.
            while true {
                if depth == 0 { return index }
                guard index < bytes.count else { return nil }
                let inObject = objects & 1 == 1
                if bytes[index] == UInt8(ascii: ",") {
                    index += 1
                    if inObject {
                        guard let value = name(at: index) else { return nil }
                        index = value
                    }
                    break
                }
                guard bytes[index] == (inObject ? UInt8(ascii: "}") : UInt8(ascii: "]")) else { return nil }
                index += 1
                objects >>= 1
                depth -= 1
            }
        }
    }
}

extension JSONReader {
    /// Reads the object at the reader (``atObject``) into packed text; an error is the one
    /// ``value()`` would throw. An object already in the writer's form (see
    /// ``PackedJSONObject/endOfValueAsWritten(in:)``; most producers write that way) is checked
    /// and copied as it stands in one pass, with no value built; any other is read and written
    /// again.
    mutating func packedObject() throws(JSONSyntaxError) -> PackedJSONObject {
        precondition(atObject, "packedObject() reads an object")
        let start = index
        if let end = PackedJSONObject.endOfValueAsWritten(in: rest) {
            skip(end)
            let text = bytes(from: start)
            return PackedJSONObject(text: text.count == 2 ? [] : Array(text))
        }
        guard case .object(let object) = try value() else { preconditionFailure("an object read as another value") }
        return PackedJSONObject(object)
    }
}

extension UnsafeBufferPointer<UInt8> {
    /// Whether the bytes are those of `literal`.
    fileprivate func `is`(_ literal: StaticString) -> Bool {
        count == literal.utf8CodeUnitCount && memcmpEqual(baseAddress!, literal.utf8Start, count)
    }
}
