import Testing
@testable import UpshiftCore

@Suite("Event decoding")
struct EventDecoderTests {
    let decoder = EventDecoder(maximumBytes: 1024)

    @Test func decodesATrackCallWithEveryField() throws {
        let event = try decoder.decode("""
            {"type":"track","userId":"u1","anonymousId":"a1","messageId":"m1","timestamp":"2026-03-01T10:00:00.123+01:00",
             "event":"Usage Recorded","properties":{"metric":"api_calls","quantity":250},"context":{"ip":"1.2.3.4"}}
            """)
        #expect(event.kind == .track)
        #expect(event.customerID == "u1")
        #expect(event.anonymousID == "a1")
        #expect(event.messageID == "m1")
        #expect(event.timestamp == at("2026-03-01T09:00:00.123Z"))
        #expect(event.name == "Usage Recorded")
        #expect(event.properties == ["metric": "api_calls", "quantity": 250])
    }

    @Test func anonymousIDKeysTheCustomerWithoutAUserID() throws {
        let event = try decoder.decode(#"{"type":"page","anonymousId":"a1","messageId":"m","timestamp":"2026-03-01T10:00:00Z","name":"Pricing"}"#)
        #expect(event.customerID == "a1")
        #expect(event.name == "Pricing")
    }

    @Test func originalTimestampAndReceivedAtStandInForAMissingTimestamp() throws {
        let original = try decoder.decode(#"{"type":"identify","userId":"u","messageId":"m","originalTimestamp":"2026-03-01T10:00:00Z","receivedAt":"2026-03-02T10:00:00Z"}"#)
        #expect(original.timestamp == at("2026-03-01T10:00Z"))
        let received = try decoder.decode(#"{"type":"identify","userId":"u","messageId":"m","receivedAt":"2026-03-02T10:00:00Z"}"#)
        #expect(received.timestamp == at("2026-03-02T10:00Z"))
    }

    @Test func identifyTakesTheTimezoneFromContext() throws {
        let event = try decoder.decode(#"{"type":"identify","userId":"u","messageId":"m","timestamp":"2026-03-01T10:00:00Z","traits":{"plan":"pro"},"context":{"timezone":"Europe/Paris"}}"#)
        #expect(event.traits == ["plan": "pro", "timezone": "Europe/Paris"])
    }

    /// Traits as a producer writes them, spaces and escapes included, are the traits the writer
    /// would write; a `null` is none.
    @Test func traitsInAnyFormAreTheSameTraits() throws {
        let compact = try decoder.decode(#"{"type":"identify","userId":"u","messageId":"m","timestamp":"2026-03-01T10:00:00Z","traits":{"plan":"pro","seats":5}}"#)
        let spaced = try decoder.decode(#"{"type":"identify","userId":"u","messageId":"m","timestamp":"2026-03-01T10:00:00Z","traits": { "plan" : "pr\u006f", "seats" : 5.0 } }"#)
        #expect(compact.traits == ["plan": "pro", "seats": 5])
        #expect(spaced.traits == compact.traits)
        let none = try decoder.decode(#"{"type":"identify","userId":"u","messageId":"m","timestamp":"2026-03-01T10:00:00Z","traits":null}"#)
        #expect(none.traits.isEmpty)
    }

    /// Properties too: held as the writer would write them, and read the same whatever their form.
    @Test func propertiesInAnyFormAreTheSameProperties() throws {
        let compact = try decoder.decode(#"{"type":"track","userId":"u","messageId":"m","timestamp":"2026-03-01T10:00:00Z","event":"E","properties":{"plan":"pro","seats":5,"price":2.5}}"#)
        let spaced = try decoder.decode(#"{"type":"track","userId":"u","messageId":"m","timestamp":"2026-03-01T10:00:00Z","event":"E","properties": { "plan" : "pr\u006f", "seats" : 5.0, "price": 25e-1 } }"#)
        #expect(String(decoding: compact.properties.text, as: UTF8.self) == #"{"plan":"pro","seats":5,"price":2.5}"#)
        #expect(spaced.properties == compact.properties)
        #expect(spaced.properties["seats"] == 5)
        #expect(spaced.properties["price"] == 2.5)
        let none = try decoder.decode(#"{"type":"track","userId":"u","messageId":"m","timestamp":"2026-03-01T10:00:00Z","event":"E","properties":null}"#)
        #expect(none.properties.isEmpty)
    }

    @Test func escapedTypeStillNamesTheKind() throws {
        let event = try decoder.decode(#"{"type":"identif\u0079","type":"track","userId":"u","messageId":"m","timestamp":"2026-03-01T10:00:00Z"}"#)
        #expect(event.kind == .identify)
    }

    @Test(arguments: [(String, String, EventError.Problem)]([
        ("{\"type\":\"track\"", "record: invalid JSON at byte 15: unexpected end of input in an object", .malformed),
        ("[1,2]", "record: expected a JSON object, got array", .notAnObject),
        (#"{"userId":"u","messageId":"m","timestamp":"2026-03-01T10:00:00Z"}"#, "type: missing", .missing),
        (#"{"type":"purchase","userId":"u","messageId":"m","timestamp":"2026-03-01T10:00:00Z"}"#,
         "type: unknown event type \"purchase\"; expected one of track, identify, group, page, screen, alias", .unknownType),
        (#"{"type":"trace","userId":"u","messageId":"m","timestamp":"2026-03-01T10:00:00Z"}"#,
         "type: unknown event type \"trace\"; expected one of track, identify, group, page, screen, alias", .unknownType),
        (#"{"type":"tr\u0061ce","userId":"u","messageId":"m","timestamp":"2026-03-01T10:00:00Z"}"#,
         "type: unknown event type \"trace\"; expected one of track, identify, group, page, screen, alias", .unknownType),
        (#"{"type":"","userId":"u","messageId":"m","timestamp":"2026-03-01T10:00:00Z"}"#, "type: empty string", .empty),
        (#"{"type":7,"userId":"u","messageId":"m","timestamp":"2026-03-01T10:00:00Z"}"#, "type: expected a string, got number", .wrongType),
        (#"{"type":null,"type":"track","userId":"u","messageId":"m","timestamp":"2026-03-01T10:00:00Z"}"#, "type: missing", .missing),
        (#"{"type":"track","messageId":"m","timestamp":"2026-03-01T10:00:00Z","event":"E"}"#,
         "userId: missing: a record needs a userId or an anonymousId", .missing),
        (#"{"type":"track","userId":42,"messageId":"m","timestamp":"2026-03-01T10:00:00Z","event":"E"}"#,
         "userId: expected a string, got number", .wrongType),
        (#"{"type":"track","userId":"u","timestamp":"2026-03-01T10:00:00Z","event":"E"}"#, "messageId: missing", .missing),
        (#"{"type":"track","userId":"u","messageId":"m","event":"E"}"#,
         "timestamp: missing: a record needs a timestamp, originalTimestamp or receivedAt", .missing),
        (#"{"type":"track","userId":"u","messageId":"m","timestamp":"yesterday","event":"E"}"#,
         "timestamp: not an ISO-8601 date-time: \"yesterday\"", .badTime),
        (#"{"type":"track","userId":"u","messageId":"m","timestamp":"2026-02-30T10:00:00Z","event":"E"}"#,
         "timestamp: not an ISO-8601 date-time: \"2026-02-30T10:00:00Z\"", .badTime),
        (#"{"type":"track","userId":"u","messageId":"m","timestamp":1700000000,"event":"E"}"#,
         "timestamp: expected an ISO-8601 date-time string, got number", .wrongType),
        (#"{"type":"track","userId":"u","messageId":"m","timestamp":"2026-03-01T10:00:00Z"}"#, "event: missing", .missing),
        (#"{"type":"track","userId":"u","messageId":"m","timestamp":"2026-03-01T10:00:00Z","event":"E","properties":[]}"#,
         "properties: expected an object, got array", .wrongType),
        (#"{"type":"identify","userId":"u","messageId":"m","timestamp":"2026-03-01T10:00:00Z","traits":"pro"}"#,
         "traits: expected an object, got string", .wrongType),
        (#"{"type":"identify","userId":"u","messageId":"m","timestamp":"2026-03-01T10:00:00Z","traits":{"plan":"pro",}}"#,
         "record: invalid JSON at byte 106: expected a member name", .malformed),
        (#"{"type":"group","userId":"u","messageId":"m","timestamp":"2026-03-01T10:00:00Z"}"#, "groupId: missing", .missing),
        (#"{"type":"alias","anonymousId":"a","messageId":"m","timestamp":"2026-03-01T10:00:00Z","previousId":"a"}"#,
         "userId: missing: an alias call needs the userId it links to", .missing),
    ]))
    func invalidRecordNamesTheFieldAndTheReason(record: String, message: String, problem: EventError.Problem) {
        let error = #expect(throws: EventError.self) { try decoder.decode(record) }
        #expect(error?.description == message)
        #expect(error?.problem == problem)
    }

    @Test func oversizedRecordIsRefusedBeforeParsing() {
        let record = #"{"type":"track","userId":"u","messageId":"m","timestamp":"2026-03-01T10:00:00Z","event":"E","properties":{"x":""# + String(repeating: "y", count: 2000) + "\"}}"
        let error = #expect(throws: EventError.self) { try decoder.decode(record) }
        #expect(error == EventError(field: "record", problem: .tooLarge, reason: "\(record.utf8.count) bytes is over the limit of 1024"))
    }

    @Test(arguments: [
        ("2026-03-01T10:00:00Z", "2026-03-01T10:00:00.000Z"),
        ("2026-03-01T10:00:00.5Z", "2026-03-01T10:00:00.500Z"),
        ("2026-03-01T10:00:00.123456789Z", "2026-03-01T10:00:00.123Z"),
        ("2026-03-01T10:00:00-05:00", "2026-03-01T15:00:00.000Z"),
        ("2026-03-01T10:00:00+0530", "2026-03-01T04:30:00.000Z"),
        ("2026-03-01 10:00", "2026-03-01T10:00:00.000Z"),
        ("2026-03-01", "2026-03-01T00:00:00.000Z"),
        ("1969-12-31T23:59:59.999Z", "1969-12-31T23:59:59.999Z"),
        ("2024-02-29T00:00:00Z", "2024-02-29T00:00:00.000Z"),
        // The written form, read at its fixed places: a leap second is held at :59, as the general reader holds it.
        ("2024-02-29T23:59:60.250Z", "2024-02-29T23:59:59.250Z"),
        ("0001-01-01T00:00:00.000Z", "0001-01-01T00:00:00.000Z"),
        ("0987-06-05T04:03:02.05Z", "0987-06-05T04:03:02.050Z"),
        ("2026-03-01T10:00:00.005Z", "2026-03-01T10:00:00.005Z"),
    ])
    func parsesISO8601WithAndWithoutFractionsAndOffsets(text: String, utc: String) {
        #expect(ISO8601.parse(text)?.description == utc)
    }

    @Test(arguments: [
        "2026-3-01T10:00:00Z", "2026-03-01T25:00:00Z", "2026-03-01T10:00:00+25:00", "2026-03-01T10:00:00Zjunk", "2025-02-29",
        "2025-02-29T10:00:00.000Z", "2026-13-01T10:00:00.000Z", "2026-03-01T24:00:00.000Z", "2026-03-01T10:60:00.000Z",
        "2026-03-01T10:00:00.0a0Z", "2026-03-01T10:00:00.000Q",
    ])
    func refusesMalformedDates(text: String) {
        #expect(ISO8601.parse(text) == nil)
    }

    @Test func jsonRoundTripsThroughTheWriter() throws {
        let text = #"{"a":[1,2.5,-3e-7,true,null],"b":{"c":"line\nbreak \"quoted\" \u00e9 \ud83d\ude00"}}"#
        var writer = JSONWriter()
        writer.write(try JSONReader.parse(text))
        #expect(writer.text == #"{"a":[1,2.5,-3e-07,true,null],"b":{"c":"line\nbreak \"quoted\" é 😀"}}"#)
        #expect(try JSONReader.parse(writer.text) == JSONReader.parse(text))
    }

    @Test func firstOfARepeatedMemberCountsAndEscapedKeysAreRead() throws {
        let event = try decoder.decode(#"{"type":"track","user\u0049d":"u1","userId":"u2","messageId":"m","timestamp":"2026-03-01T10:00:00Z","timestamp":"junk","event":"E\u00e9"}"#)
        #expect(event.customerID == "u1")
        #expect(event.timestamp == at("2026-03-01T10:00Z"))
        #expect(event.name == "Eé")
    }

    @Test func escapedTimestampIsDecodedBeforeParsing() throws {
        let event = try decoder.decode(#"{"type":"track","userId":"u","messageId":"m","timestamp":"2026-03-01T10:00:00\u005a","event":"E"}"#)
        #expect(event.timestamp == at("2026-03-01T10:00Z"))
    }

    @Test(arguments: [
        (#"{"type":"track","userId":"u","messageId":"m","timestamp":"2026-03-01T10:00:00Z","event":"E","context":{"ip":"1.2.3.4",}}"#,
         "record: invalid JSON at byte 118: expected a member name"),
        (#"{"type":"track","userId":"u","messageId":"m","timestamp":"2026-03-01T10:00:00Z","event":"E","sentAt":"\q"}"#,
         "record: invalid JSON at byte 104: invalid escape"),
        (#"{"type":"track","userId":"u","messageId":"m","timestamp":"2026-03-01T10:00:00Z","event":"E","extra":[1,tru]}"#,
         "record: invalid JSON at byte 103: invalid literal"),
        (#"{"type":"track","userId":"u","messageId":"m","timestamp":"2026-03-01T10:00:00Z","event":"E"} x"#,
         "record: invalid JSON at byte 93: unexpected text after the value"),
    ])
    func membersNotReadAreStillChecked(record: String, message: String) {
        let error = #expect(throws: EventError.self) { try decoder.decode(record) }
        #expect(error?.description == message)
        #expect(error?.problem == .malformed)
    }

    @Test(arguments: [
        (#"{"a" 1}"#, "invalid JSON at byte 5: expected ':'"),
        (#"{"a":1 "b":2}"#, "invalid JSON at byte 7: expected ',' or '}'"),
        (#"{"a":1,}"#, "invalid JSON at byte 7: expected a member name"),
        (#"{ }"#, nil),
        (#"{"a":{"b":{}} , "c" : [ ] }"#, nil),
        (#"{"a":1"#, "invalid JSON at byte 6: unexpected end of input in an object"),
        (String(repeating: #"{"a":"#, count: 65) + "1" + String(repeating: "}", count: 65), "invalid JSON at byte 320: nested deeper than 64 levels"),
    ])
    func objectsAreCheckedMemberByMember(text: String, message: String?) {
        #expect(verdict { try JSONReader.parse(text) } == message)
    }

    @Test func skippedMembersAreCheckedAsTheTreeReaderChecksThem() {
        // Whatever sits in a member the decoder skips, it fails or passes with the reader's own verdict.
        let values = [#""a\u0041\ud83d\ude00""#, #""\ud83d""#, #""tab\there""#, #"[1,{"a":[true,false,null]},-2.5e3]"#, #"01"#, #"{"a":}"#, #""\u12""#]
        for value in values {
            let record = #"{"type":"identify","userId":"u","messageId":"m","timestamp":"2026-03-01T10:00:00Z","context":"# + value + "}"
            #expect(verdict { try JSONReader.parse(record) }.map { "record: \($0)" } == verdict { try decoder.decode(record) }, "\(value)")
        }
    }

    @Test func escapesAreFoundWhereverTheyFallInAWord() throws {
        // The writer and the reader look at eight bytes at a time: put each kind of byte to escape
        // at every position of the first words, and in the tail after them.
        for special in ["\u{01}", "\"", "\\", "\n"] {
            for position in 0..<20 {
                let text = String(repeating: "a", count: position) + special + "bcdefghij"
                var writer = JSONWriter()
                writer.write(string: text)
                let escaped = ["\u{01}": "\\u0001", "\"": "\\\"", "\\": "\\\\", "\n": "\\n"][special]!
                #expect(writer.text == "\"" + String(repeating: "a", count: position) + escaped + "bcdefghij\"")
                #expect(try JSONReader.parse(writer.text) == .string(text))
            }
        }
        #expect(throws: JSONSyntaxError.self) { try JSONReader.parse("\"abcdefghijkl\u{01}mn\"") }
    }

    @Test func escapesInARowAndAtTheEndAreEachWritten() throws {
        var writer = JSONWriter()
        writer.write(string: "\"\\\n\u{02}x\"")
        #expect(writer.text == #""\"\\\n\u0002x\"""#)
        #expect(try JSONReader.parse(writer.text) == .string("\"\\\n\u{02}x\""))
    }

    /// The error a call throws, as text, or nil when it succeeds.
    private func verdict(_ body: () throws -> Any) -> String? {
        do {
            _ = try body()
            return nil
        } catch {
            return "\(error)"
        }
    }
}
