import Testing
@testable import UpshiftCore

@Suite("Output records")
struct OutputTests {
    private func offer() -> Output {
        var output = Output(
            kind: .offer, decisionID: "0123456789abcdef", customerID: "c\"1", eventTime: at("2026-03-01T10:00Z"),
            decisionTime: at("2026-03-01T10:00:01.5Z"))
        output.workflowID = "quota-upgrade"
        output.workflowVersion = 3
        output.step = "steps[4]"
        output.variant = "b"
        output.channel = .inApp
        output.queue = "customer_success"
        output.template = "tier\ncomparison"
        output.offer = ["kind": "trial", "days": 14]
        output.reasons = ["open_ticket", "cap:upsell_messages"]
        output.evidence = ["ratio": 0.86, "window": "30d"]
        return output
    }

    @Test func everyMemberIsWrittenInItsFixedOrderWithStringsEscaped() {
        #expect(offer().jsonLine == #"""
            {"type":"offer","decision_id":"0123456789abcdef","customer_id":"c\"1","workflow_id":"quota-upgrade","workflow_version":3,"step":"steps[4]","variant":"b","channel":"in_app","queue":"customer_success","template":"tier\ncomparison","offer":{"kind":"trial","days":14},"reasons":["open_ticket","cap:upsell_messages"],"evidence":{"ratio":0.86,"window":"30d"},"event_time":"2026-03-01T10:00:00.000Z","decision_time":"2026-03-01T10:00:01.500Z"}
            """#)
    }

    @Test func absentMembersAreLeftOutNotWrittenAsNull() {
        let exit = Output(kind: .exit, decisionID: "fedcba9876543210", customerID: "c1", eventTime: at("2026-03-01T10:00Z"), decisionTime: at("2026-03-01T10:00Z"))
        #expect(exit.jsonLine == #"{"type":"exit","decision_id":"fedcba9876543210","customer_id":"c1","event_time":"2026-03-01T10:00:00.000Z","decision_time":"2026-03-01T10:00:00.000Z"}"#)
    }

    @Test func timesPastYear9999AreWrittenAsFormatWritesThem() {
        let far = Timestamp(milliseconds: 253_402_300_800_000)
        let exit = Output(kind: .exit, decisionID: "fedcba9876543210", customerID: "c1", eventTime: far, decisionTime: far)
        #expect(far.description == "10000-01-01T00:00:00.000Z")
        #expect(exit.jsonLine.hasSuffix(#""event_time":"10000-01-01T00:00:00.000Z","decision_time":"10000-01-01T00:00:00.000Z"}"#))
    }

    @Test func anOverflowedNumberIsWrittenAsNullSoTheRecordStaysJSON() {
        var exit = Output(kind: .exit, decisionID: "fedcba9876543210", customerID: "c1", eventTime: at("2026-03-01T10:00Z"), decisionTime: at("2026-03-01T10:00Z"))
        exit.evidence = ["value": .number(1e308 * 10), "ratio": .number(.nan)]
        #expect(exit.jsonLine.contains(#""evidence":{"value":null,"ratio":null}"#))
        #expect(exit.json.object?["evidence"] == .object(["value": .null, "ratio": .null]))
    }

    /// Numbers are written as Swift's shortest form writes them, whichever way the writer takes:
    /// integers, up to three decimals, and the rest through `description`.
    @Test func numbersAreWrittenInSwiftsShortestForm() {
        var random = SplitMix(state: 19)
        var numbers: [Double] = [0.8, 4.112, -0.25, 0.05, -0.001, 0.001, 0.0005, 1234.5, 999_999_999_999.999, 1e12 + 0.5, 0.1 + 0.2, 1.0 / 3, -7.125, 2.5e-7]
        for _ in 0..<5_000 {
            let thousandths = Double(Int64.random(in: -10_000_000_000...10_000_000_000, using: &random))
            numbers.append(thousandths / [10, 100, 1000].randomElement(using: &random)!)
            numbers.append(Double(bitPattern: UInt64.random(in: 0x3F00_0000_0000_0000...0x4270_0000_0000_0000, using: &random)))
        }
        for number in numbers {
            var writer = JSONWriter()
            writer.write(number: number)
            let expected = number.rounded() == number && abs(number) < 1e15 ? String(Int64(number)) : "\(number)"
            #expect(writer.text == expected, "\(number)")
        }
    }

    @Test func theJSONValueIsTheWrittenRecordReadBack() {
        let json = offer().json
        #expect(json.object?["customer_id"] == "c\"1")
        #expect(json.object?["workflow_version"] == 3)
        #expect(json.object?["offer"] == .object(["kind": "trial", "days": 14]))
        var writer = JSONWriter()
        writer.write(json)
        #expect(writer.text == offer().jsonLine)
    }
}
