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
    }
}
