/// A JSON object kept as its compact text in one block of memory: how a customer's traits are held.
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
        self.init(JSONObject(members.map { (key: $0.0, value: $0.1) }))
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
    static func value(at path: ArraySlice<String>, in text: UnsafeBufferPointer<UInt8>) -> JSONValue? {
        guard !text.isEmpty, !path.isEmpty else { return nil }
        var start = 0
        for name in path {
            guard text[start] == UInt8(ascii: "{"), let found = member(name, ofObjectAt: start, in: text) else { return nil }
            start = found
        }
        return value(at: start, in: text)
    }

    // The scans below rely on the text being JSONWriter's: valid, without whitespace, each string
    // escaped the one way the writer escapes it. They check nothing, and need not.

    /// Where the value of the object's first member named `name` starts.
    private static func member(_ name: String, ofObjectAt start: Int, in bytes: UnsafeBufferPointer<UInt8>) -> Int? {
        var name = name
        if name.withUTF8({ nextByteToEscape(in: $0, from: 0) < $0.count }) {
            // The key stands in the text escaped: compare with the name escaped the same way.
            var writer = JSONWriter()
            writer.write(string: name)
            name = String(decoding: writer.bytes.dropFirst().dropLast(), as: UTF8.self)
        }
        return name.withUTF8 { name in
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
    }

    /// The value that starts at `start`, built.
    private static func value(at start: Int, in bytes: UnsafeBufferPointer<UInt8>) -> JSONValue? {
        try? JSONReader.parse(UnsafeBufferPointer(rebasing: bytes[start..<end(ofValueAt: start, in: bytes)]))
    }

    /// Just past the string whose opening quote is at `start`; runs without escapes are skipped
    /// eight bytes at a time.
    private static func end(ofStringAt start: Int, in bytes: UnsafeBufferPointer<UInt8>) -> Int {
        var index = nextByteToEscape(in: bytes, from: start + 1)
        while bytes[index] == UInt8(ascii: "\\") { index = nextByteToEscape(in: bytes, from: index + 2) }
        return index + 1
    }

    /// Just past the value that starts at `start`.
    private static func end(ofValueAt start: Int, in bytes: UnsafeBufferPointer<UInt8>) -> Int {
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

    /// Sets each member of `other` as ``JSONObject/merge(_:)`` does; the text is written again.
    public mutating func merge(_ other: JSONObject) {
        guard !other.isEmpty else { return }
        var object = self.object
        object.merge(other)
        self = PackedJSONObject(object)
    }
}
