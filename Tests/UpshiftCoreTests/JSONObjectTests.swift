import Testing
@testable import UpshiftCore

@Suite("JSON objects")
struct JSONObjectTests {
    @Test func mergeReplacesInPlaceAndAppendsNewNames() {
        var traits: JSONObject = ["plan": "starter", "nps": 9]
        traits.merge(["nps": 6, "region": "eu"])
        #expect(traits.members.map(\.key) == ["plan", "nps", "region"])
        #expect(traits["nps"] == 6)
    }

    @Test func mergeIntoAnEmptyObjectTakesTheOther() {
        var traits = JSONObject()
        traits.merge(["plan": "starter", "quota": .object(["api_calls": 1000])])
        #expect(traits == ["plan": "starter", "quota": .object(["api_calls": 1000])])
    }

    /// JSON allows a name twice; a merge sets members one after another, so the last value wins
    /// in the first one's place, into an empty object as into any other.
    @Test func mergeOfARepeatedNameKeepsOneMemberWithTheLastValue() {
        var traits = JSONObject()
        traits.merge(JSONObject([("plan", "starter"), ("nps", 9), ("plan", "growth")]))
        #expect(traits == JSONObject([("plan", "growth"), ("nps", 9)]))
    }

    @Test func aPackedObjectReadsTheFirstMemberAtAPath() {
        let packed = PackedJSONObject(JSONObject([
            ("plan", "starter"), ("note", "say \"hi\"\n"), ("a\"b", 1), ("quota", .object(["api_calls": 1000, "seats": .array([1, .object(["x": 2])])])),
            ("consent", .object(["sms": true])), ("plan", "pro"), ("nps", 6.5),
        ]))
        #expect(packed.value(at: ["plan"]) == "starter")
        #expect(packed.value(at: ["note"]) == "say \"hi\"\n")
        #expect(packed.value(at: ["a\"b"]) == 1)
        #expect(packed.value(at: ["quota", "api_calls"]) == 1000)
        #expect(packed.value(at: ["quota", "seats"]) == .array([1, .object(["x": 2])]))
        #expect(packed.value(at: ["nps"]) == 6.5)
        #expect(packed.value(at: ["consent", "sms"]) == true)
        #expect(packed.value(at: ["consent", "email"]) == nil)
        #expect(packed.value(at: ["plan", "tier"]) == nil)
        #expect(packed.value(at: ["region"]) == nil)
        #expect(packed.value(at: [String]()) == nil)
    }

    @Test func aPackedObjectIsTheTextTheWriterWritesAndReadsBackWhole() {
        let object: JSONObject = ["plan": "starter", "quota": .object(["api_calls": 1000]), "tags": .array(["a", .null])]
        let packed = PackedJSONObject(object)
        #expect(String(decoding: packed.text, as: UTF8.self) == #"{"plan":"starter","quota":{"api_calls":1000},"tags":["a",null]}"#)
        #expect(packed.object == object)
        #expect(PackedJSONObject().text.isEmpty)
        #expect(PackedJSONObject(JSONObject()).object == JSONObject())
    }

    @Test func aPackedObjectMergesAsAnObjectDoes() {
        var packed: PackedJSONObject = ["plan": "starter", "nps": 9]
        packed.merge(["nps": 6, "region": "eu"])
        #expect(packed == PackedJSONObject(["plan": "starter", "nps": 6, "region": "eu"]))
        var unchanged = packed
        unchanged.merge(PackedJSONObject())
        #expect(unchanged == packed)
    }

    /// The shortcut into an empty object must not keep a repeated name twice.
    @Test func aPackedObjectWithARepeatedNameMergesIntoAnEmptyOneAsAnObjectDoes() {
        let repeated = PackedJSONObject(JSONObject([("plan", "starter"), ("nps", 9), ("plan", "growth")]))
        var packed = PackedJSONObject()
        packed.merge(repeated)
        #expect(packed == PackedJSONObject(JSONObject([("plan", "growth"), ("nps", 9)])))
        let plain: PackedJSONObject = ["plan": "starter", "nps": 9]
        var taken = PackedJSONObject()
        taken.merge(plain)
        #expect(taken == plain)
    }

    /// Values read from packed text without the reader must be the reader's values, exactly
    /// (a number's sign and every value's type included), for every form the writer writes. The
    /// writer writes -0.0 as `0`, so that case reads back as 0.
    @Test(arguments: [
        "starter", "", "café", "say \"hi\"\n", "tab\there", 0, -0.0, 7, -42, 999_999_999_999_999, 1_000_000_000_000_000, -999_999_999_999_999,
        6.5, -0.25, 1e300, true, false, .null, .array([1, "a"]), .object(["sms": true]),
    ] as [JSONValue])
    func aValueReadFromPackedTextIsTheReadersValue(_ value: JSONValue) throws {
        var writer = JSONWriter()
        writer.write(value)
        let read = writer.bytes.withUnsafeBufferPointer { PackedJSONObject.value(written: $0) }
        let expected = try writer.bytes.withUnsafeBufferPointer { buffer throws(JSONSyntaxError) in try JSONReader.parse(buffer) }
        #expect(read == expected)
        if case .number(let number)? = read, case .number(let other) = expected { #expect(number.sign == other.sign) }
    }

    @Test func membersReadWhatTheScanReads() {
        let packed = PackedJSONObject(JSONObject([
            ("plan", "starter"), ("a\"b", 1), ("", "empty"), ("quota", .object(["api_calls": 1000])), ("plan", "pro"), ("nps", 6.5),
        ]))
        let members = PackedJSONObject().merging(packed)
        #expect(members.object == PackedJSONObject(JSONObject([("plan", "pro"), ("a\"b", 1), ("", "empty"), ("quota", .object(["api_calls": 1000])), ("nps", 6.5)])))
        for path: [String] in [["plan"], ["a\"b"], [""], ["quota", "api_calls"], ["quota", "seats"], ["nps"], ["region"], ["plan", "tier"], []] {
            #expect(members.value(at: path[...]) == members.object.value(at: path), "\(path)")
        }
        #expect(members.value(at: ["plan"]) == "pro")
        #expect(members.object.hasMember(named: "a\"b"))
        #expect(members.object.hasMember(named: ""))
        #expect(!members.object.hasMember(named: "region"))
    }

    /// Text in the writer's form is copied as it stands; any other form is read and written
    /// again, to the same text the writer would write.
    @Test(arguments: [
        (#"{"plan":"pro","quota":{"api_calls":10000},"tags":["a",null,true,false],"n":-12,"z":0}"#, true),
        (#"{}"#, true),
        (#"{ "plan": "pro" }"#, false),
        (#"{"plan":"pr\u006f"}"#, false),
        (#"{"city":"Zürich"}"#, false),
        (#"{"nps":6.0}"#, false),
        (#"{"nps":6.5}"#, false),
        (#"{"nps":6e0}"#, false),
        (#"{"nps":-0}"#, false),
        (#"{"big":1234567890123456}"#, false),
        (#"{"big":123456789012345}"#, true),
        (#"{"a":{},"b":[],"c":[{"d":[0,-5,[]]}],"e":""}"#, true),
        (String(repeating: #"{"a":"#, count: 40) + "1" + String(repeating: "}", count: 40), false),
    ])
    func objectsInTheWritersFormAreTakenAsTheyStand(text: String, asWritten: Bool) throws {
        var bytes = Array(text.utf8)
        let (packed, fast) = try bytes.withUnsafeMutableBufferPointer { buffer throws(JSONSyntaxError) in
            var reader = JSONReader(bytes: UnsafeBufferPointer(buffer))
            return (try reader.packedObject(), PackedJSONObject.endOfValueAsWritten(in: UnsafeBufferPointer(buffer)) == buffer.count)
        }
        #expect(fast == asWritten)
        guard case .object(let object) = try JSONReader.parse(text) else { Issue.record("not an object"); return }
        #expect(packed == PackedJSONObject(object))
    }

    /// The one-pass check accepts only valid JSON: anything else goes to the reader, which
    /// throws what it throws for any value.
    @Test(arguments: [
        #"{"a":1,}"#, #"{"a" 1}"#, #"{"a":tru}"#, #"{"a":[1,]}"#, #"{"a":"x}"#, #"{"a":-}"#, #"{"a":[}"#, #"{"a":1"#, #"{"a":1]"#,
        #"{1:2}"#, #"{"a":"\q"}"#, #"{"n":01}"#, #"{"n":-01}"#, String(repeating: #"{"a":"#, count: 70) + "1" + String(repeating: "}", count: 70),
    ])
    func invalidObjectsFailAsTheReaderFailsThem(text: String) {
        var bytes = Array(text.utf8)
        bytes.withUnsafeMutableBufferPointer { buffer in
            var packing = JSONReader(bytes: UnsafeBufferPointer(buffer))
            var reading = JSONReader(bytes: UnsafeBufferPointer(buffer))
            let packingError = #expect(throws: JSONSyntaxError.self) { _ = try packing.packedObject() }
            let readingError = #expect(throws: JSONSyntaxError.self) { _ = try reading.value() }
            #expect(packingError == readingError)
        }
    }

    /// Short texts are built in place; what they read must not differ from `String(decoding:as:)`,
    /// ill-formed bytes (a lone continuation byte, a cut sequence) repaired the same way.
    @Test(arguments: [
        [], Array("a".utf8), Array("customer-2354".utf8), Array("exactly 15 byte".utf8), Array("sixteen bytes ok".utf8),
        Array("café".utf8), Array("été à Paris, 🍂".utf8), [0x61, 0x80, 0x62], [0x61, 0xE2, 0x82], [0xFF], [0x41, 0x00, 0x42],
    ] as [[UInt8]])
    func textsReadAsDecodingReadsThem(bytes: [UInt8]) {
        bytes.withUnsafeBufferPointer { buffer in
            let text = String(utf8: buffer)
            #expect(text == String(decoding: buffer, as: UTF8.self))
            #expect(Array(text.utf8) == Array(String(decoding: buffer, as: UTF8.self).utf8))
        }
    }

    /// Skipping walks a value in one loop, reading reads it with a call per value: each must
    /// stop at the same place, or fail with the same error at the same byte.
    @Test(arguments: [
        #"{"library":{"name":"upshift-simulator"}}"#, #"{}"#, #"[]"#, #"[1,[2,[3,{}]],{"a":[]}]"#, #" { "a" : [ 1 , 2 ] , "b" : { } } "#,
        #"{"ua":"Mozilla\/5.0 \"x\" \u00e9\ud83d\ude00","n":-0.5e-3,"t":true,"f":false,"z":null}"#, #""text""#, #"12"#, #"[[[[]]]],9"#,
        #"{"a":1,}"#, #"{"a" 1}"#, #"{"a":tru}"#, #"[1,]"#, #"[1 2]"#, #"{"a":[}"#, #"{"a":1"#, #"["#, #"{"#, #"{"a":"x}"#, #"{"a":"\q"}"#,
        #"{"n":01}"#, #"[1e999]"#, #"{"s":"\ud800"}"#, #"{"a":1]"#, #"[1}"#, #"{1:2}"#, #"@"#, #""#,
        String(repeating: "[", count: 64) + String(repeating: "]", count: 64),
        String(repeating: "[", count: 65) + String(repeating: "]", count: 65),
        String(repeating: #"{"a":"#, count: 64) + "1" + String(repeating: "}", count: 64),
        String(repeating: #"{"a":["#, count: 40) + String(repeating: "]}", count: 40),
    ])
    func skippingChecksWhatReadingChecks(text: String) {
        var bytes = Array(text.utf8)
        bytes.withUnsafeMutableBufferPointer { buffer in
            var skipping = JSONReader(bytes: UnsafeBufferPointer(buffer))
            var reading = JSONReader(bytes: UnsafeBufferPointer(buffer))
            skipping.skipWhitespace()
            reading.skipWhitespace()
            let skipped = Result { () throws(JSONSyntaxError) in try skipping.skipValue() }
            let read = Result { () throws(JSONSyntaxError) in _ = try reading.value() }
            switch (skipped, read) {
            case (.success, .success): #expect(skipping.index == reading.index)
            case (.failure(let skipError), .failure(let readError)): #expect(skipError == readError)
            default: Issue.record("skipping gave \(skipped), reading gave \(read)")
            }
        }
    }

    /// The same, over texts made of random tokens: mostly invalid, in every way a token can be
    /// out of place.
    @Test func skippingChecksWhatReadingChecksOnRandomTexts() {
        let tokens = ["{", "}", "[", "]", ",", ":", " ", #""a""#, #""b\n""#, "1", "-2.5e3", "0", "01", "true", "nul", "null"]
        var random = SplitMix(state: 18)
        for _ in 0..<2_000 {
            let text = (0..<Int.random(in: 1...24, using: &random)).map { _ in tokens.randomElement(using: &random)! }.joined()
            var bytes = Array(text.utf8)
            bytes.withUnsafeMutableBufferPointer { buffer in
                var skipping = JSONReader(bytes: UnsafeBufferPointer(buffer))
                var reading = JSONReader(bytes: UnsafeBufferPointer(buffer))
                let skipped = Result { () throws(JSONSyntaxError) in try skipping.skipValue() }
                let read = Result { () throws(JSONSyntaxError) in _ = try reading.value() }
                switch (skipped, read) {
                case (.success, .success): #expect(skipping.index == reading.index, "\(text)")
                case (.failure(let skipError), .failure(let readError)): #expect(skipError == readError, "\(text)")
                default: Issue.record("\(text): skipping gave \(skipped), reading gave \(read)")
                }
            }
        }
    }
}
