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
}
