import Testing
@testable import UpshiftCore

@Suite("Guardrail pauses")
struct GuardrailPauseTests {
    func promo(minimumSample: Int = 50, version: Int = 1) throws -> Program {
        try UpshiftCoreTests.program("""
            guardrails:
              unsubscribed: { event: "Unsubscribed", within: 30d, pause_above: 10%, minimum_sample: \(minimumSample) }
            workflows:
              - id: promo
                version: \(version)
                trigger: { event: "Signed Up", count: 1, within: 1d }
                variants: { calm: 50%, loud: 50% }
                steps: [ { send: { channel: email, template: hello } }, { wait: 2d }, { send: { channel: email, template: again } } ]
            """, shared: false)
    }

    /// 400 sign-ups a minute apart; 3 in 10 customers of the loud variant unsubscribe an hour
    /// after theirs, none of the calm one.
    func stream(_ program: Program) -> [Event] {
        let engine = DecisionEngine(program: program)
        var events: [Event] = []
        for index in 0..<400 {
            let customer = "customer-\(index)"
            let signup = at("2026-03-01T00:00:00Z") + .minutes(Int64(index))
            events.append(Event(kind: .track, customerID: customer, userID: customer, messageID: "s-\(index)", timestamp: signup, name: "Signed Up"))
            var probe = engine.newState(for: customer)
            _ = engine.process(events.last!, at: signup, state: &probe)
            if probe.run?.variant == "loud", index % 10 < 3 {
                events.append(Event(kind: .track, customerID: customer, userID: customer, messageID: "u-\(index)", timestamp: signup + .hours(1),
                                    name: "Unsubscribed", properties: ["channel": "sms"]))
            }
        }
        return events.sorted { ($0.timestamp, $0.messageID) < ($1.timestamp, $1.messageID) }
    }

    @Test func aVariantOverItsUnsubscribeBoundIsPausedOnceAndSendsNothingMore() throws {
        let program = try promo()
        var replay = StreamEngine(program: program)
        let outputs = stream(program).flatMap { replay.process($0) } + replay.finish()

        let pauses = outputs.filter { $0.kind == .pause }
        #expect(pauses.count == 1)
        let pause = try #require(pauses.first)
        #expect(pause.variant == "loud" && pause.reasons == ["unsubscribed"])
        #expect(try #require(pause.evidence["sample"]?.number) >= 50)
        #expect(try #require(pause.evidence["rate"]?.number) > 0.1)
        #expect(replay.pauses == [ArmKey(workflow: "promo", version: 1, arm: "loud"): "unsubscribed"])

        #expect(!outputs.contains { $0.kind == .offer && $0.variant == "loud" && $0.eventTime > pause.eventTime }, "loud sends nothing after the pause")
        #expect(outputs.contains { $0.kind == .suppression && $0.reasons == ["paused: unsubscribed"] }, "new loud entries are held back")
        #expect(outputs.contains { $0.kind == .exit && $0.variant == "loud" && $0.reasons == ["paused: unsubscribed"] }, "loud runs in flight stop")
        let calm = Set(outputs.filter { $0.kind == .offer && $0.variant == "calm" }.map(\.customerID))
        #expect(outputs.count { $0.kind == .offer && $0.variant == "calm" } == calm.count * 2, "calm goes on")
    }

    @Test func aChangedGuardrailOrVersionResumesThePausedVariant() throws {
        let pause = Pause(key: ArmKey(workflow: "promo", version: 1, arm: "loud"), guardrail: "unsubscribed", bound: 0.1, minimumSample: 50)
        var same = StreamEngine(program: try promo())
        let applied = same.apply(pause)
        var changedSample = StreamEngine(program: try promo(minimumSample: 500))
        let appliedAfterASampleChange = changedSample.apply(pause)
        var newVersion = StreamEngine(program: try promo(version: 2))
        let appliedToANewVersion = newVersion.apply(pause)
        #expect(applied && same.pauses.count == 1)
        #expect(!appliedAfterASampleChange && !appliedToANewVersion)
        #expect(newVersion.pauses.isEmpty)
    }

    @Test func aPauseReadsBackFromItsOutput() throws {
        let program = try promo()
        var replay = StreamEngine(program: program)
        let output = try #require((stream(program).flatMap { replay.process($0) }).first { $0.kind == .pause })
        #expect(Pause(try #require(output.json.object)) == Pause(
            key: ArmKey(workflow: "promo", version: 1, arm: "loud"), guardrail: "unsubscribed", bound: 0.1, minimumSample: 50))
    }
}
