import Testing
@testable import UpshiftCore

/// A deterministic pseudo-random generator, so that a failing property shows the same case again.
struct SplitMix: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// A mixed stream for a few customers over three weeks, in event-time order.
func generatedStream(customers: Int, events: Int, seed: UInt64) -> [Event] {
    var random = SplitMix(state: seed)
    let start = at("2026-03-01T00:00Z")
    var stream: [Event] = []
    for customer in 0..<customers {
        stream.append(Event(
            kind: .identify, customerID: "c\(customer)", userID: "c\(customer)", messageID: "id-\(customer)", timestamp: start,
            traits: ["plan": "starter", "quota": .object(["api_calls": 1000]), "billing_cycle": "monthly",
                     "renewal_date": "2026-03-25T00:00:00Z", "timezone": "Europe/Paris", "consent": .object(["sms": true])]))
    }
    let names = ["Usage Recorded", "Usage Recorded", "Usage Recorded", "Session Started", "Ticket Opened", "Ticket Closed",
                 "Delivery Confirmed", "Trial Started", "Feature Locked", "Warranty Purchased", "Payment Failed", "Payment Succeeded"]
    for index in 0..<events {
        let customer = Int.random(in: 0..<customers, using: &random)
        let time = start + TimeSpan(milliseconds: Int64(index) * 21 * 86_400_000 / Int64(events))
        let name = names.randomElement(using: &random)!
        stream.append(Event(
            kind: .track, customerID: "c\(customer)", userID: "c\(customer)", messageID: "m-\(index)", timestamp: time, name: name,
            properties: ["metric": "api_calls", "quantity": .number(Double(Int.random(in: 10...200, using: &random))),
                         "feature": .string(["sso", "audit", "api", "sla"].randomElement(using: &random)!)]))
    }
    return stream
}

private func outputsByCustomer(_ outputs: [Output]) -> [String: [String]] {
    Dictionary(grouping: outputs.map { ($0.customerID, $0.jsonLine) }, by: \.0).mapValues { $0.map(\.1) }
}

@Suite("Replay")
struct ReplayTests {
    @Test func randomBatchSplitsGiveIdenticalOutputs() throws {
        let program = try examplePrograms()
        for seed in UInt64(1)...UInt64(8) {
            let stream = generatedStream(customers: 12, events: 1500, seed: seed)
            var reference = StreamEngine(program: program)
            var expected: [Output] = []
            for event in stream { expected += reference.process(event) }
            expected += reference.finish()
            #expect(expected.contains { $0.kind == .offer }, "the stream should decide something")

            // The same stream in random batches: a fresh engine per batch, state carried over,
            // and timers fired at random moments between events, as a live runtime would.
            var random = SplitMix(state: seed &* 7919)
            var states: [String: CustomerState] = [:]
            var actual: [Output] = []
            var position = 0
            while position < stream.count {
                let engine = DecisionEngine(program: program)
                let batch = stream[position..<min(stream.count, position + Int.random(in: 1...200, using: &random))]
                for event in batch {
                    var state = states[event.customerID] ?? engine.newState(for: event.customerID)
                    actual += engine.process(event, at: event.timestamp, state: &state).outputs
                    states[event.customerID] = state
                }
                position += batch.count
                let horizon = position < stream.count ? stream[position].timestamp : at("2027-01-01T00:00Z")
                let upTo = Timestamp(milliseconds: Int64.random(in: batch.last!.timestamp.rawValue...horizon.rawValue, using: &random))
                for customer in states.keys.sorted() where Bool.random(using: &random) || position == stream.count {
                    actual += engine.fireTimers(upTo: position == stream.count ? horizon : upTo, state: &states[customer]!)
                }
            }
            let batched = outputsByCustomer(actual)
            let whole = outputsByCustomer(expected)
            let differing = whole.keys.sorted().first { batched[$0] != whole[$0] }
            #expect(differing == nil, "seed \(seed): outputs of \(differing ?? "") differ")
            #expect(batched == whole)
        }
    }

    /// Groups read ahead of handling; what an event of the group does (a new customer, an alias,
    /// a resent message) must still be seen by the events after it in the same group.
    @Test func handlingInGroupsGivesWhatHandlingOneAtATimeGives() throws {
        let program = try examplePrograms()
        var stream = generatedStream(customers: 30, events: 3000, seed: 5)
        let midway = stream[stream.count / 2].timestamp
        stream.insert(contentsOf: [
            Event(kind: .track, customerID: "anon", anonymousID: "anon", messageID: "x1", timestamp: midway, name: "Usage Recorded"),
            Event(kind: .alias, customerID: "c3", userID: "c3", messageID: "x2", timestamp: midway, previousID: "anon"),
            Event(kind: .track, customerID: "anon", anonymousID: "anon", messageID: "x3", timestamp: midway, name: "Ticket Opened"),
            Event(kind: .track, customerID: "c3", userID: "c3", messageID: "x3", timestamp: midway, name: "Ticket Opened"),
        ], at: stream.count / 2)

        var single = StreamEngine(program: program)
        let expected = stream.map { single.handle($0) }
        var grouped = StreamEngine(program: program)
        var actual: [DecisionEngine.Result] = []
        grouped.handle(stream) { _, result in actual.append(result) }

        #expect(actual.count == expected.count)
        let firstDifference = actual.indices.first { $0 < expected.count && actual[$0] != expected[$0] }
        #expect(firstDifference == nil, "event \(firstDifference ?? -1) differs")
        #expect(expected.contains { $0.disposition == .duplicate })
        #expect(expected.contains { $0.outputs.contains { $0.kind == .offer } })
        let differingStates = single.states.filter { grouped.state(of: $0.key) != $0.value }.keys.sorted()
        #expect(differingStates.isEmpty)
        #expect(grouped.customerCount == single.customerCount)
    }

    @Test func replayOrdersRecordsByEventTimeAndCountsRejects() throws {
        let lines: [Substring] = [
            #"{"type":"track","userId":"u","messageId":"2","timestamp":"2026-03-01T12:00:00Z","event":"Delivery Confirmed"}"#,
            #"{"type":"track","userId":"u","messageId":"1","timestamp":"2026-03-01T10:00:00Z","event":"Refund Issued"}"#,
            #"not json"#,
            "",
            #"{"type":"track","messageId":"3","timestamp":"2026-03-01T10:00:00Z","event":"X"}"#,
        ]
        let input = ReplayInput(lines: lines)
        #expect(input.events.map(\.messageID) == ["1", "2"])
        #expect(input.rejected.map(\.line) == [3, 5])
        #expect(input.rejected.map(\.error.field) == ["record", "userId"])

        var replay = StreamEngine(program: try examplePrograms())
        var summary = ReplaySummary()
        for rejected in input.rejected { summary.reject(rejected.error) }
        var outputs: [Output] = []
        for event in input.events {
            let result = replay.handle(event)
            summary.record(result)
            outputs += result.outputs
        }
        let last = replay.finish()
        summary.record(last)
        outputs += last
        #expect(outputs.map(\.kind) == [.suppression])
        #expect(outputs.first?.reasons == ["recent_refund"])
        #expect(summary.report == """
            events: 2 (duplicates ignored: 0, late: 0, rejected: 2)
            rejected records by field:
              record: 1
              userId: 1
            suppressions by reason:
              recent_refund: 1
            """)
    }

    @Test func summaryCountsDecisionsHoldoutsExitsAndConversionsByTheirParts() throws {
        var replay = StreamEngine(program: try examplePrograms())
        var summary = ReplaySummary()
        let stream = (0..<20).flatMap { customer in
            [track("Delivery Confirmed", "d\(customer)", at: "2026-03-01T10:00Z"),
             track("Warranty Purchased", "d\(customer)", at: customer.isMultiple(of: 2) ? "2026-03-04T10:00Z" : "2026-03-20T10:00Z", ["price": 30])]
        }
        for event in stream.sorted(by: { $0.timestamp < $1.timestamp }) { summary.record(replay.handle(event)) }
        summary.record(replay.finish())
        // Two of the twenty are held out; of the rest, the even ones buy within the conversion window.
        #expect(summary.report == """
            events: 40 (duplicates ignored: 0, late: 0, rejected: 0)
            decisions by workflow, step, channel, variant:
              post-delivery-warranty steps[0] email -: 18
              post-delivery-warranty steps[1].else[0] push -: 9
            holdouts by workflow:
              post-delivery-warranty: 2
            exits by workflow and reason:
              post-delivery-warranty completed: 9
              post-delivery-warranty exit_on: Warranty Purchased: 9
            conversions by workflow, arm, conversion:
              post-delivery-warranty holdout warranty: 1
              post-delivery-warranty treatment warranty: 9
            """)
    }

    @Test func holdoutAndVariantAssignmentIsStableAndProportional() throws {
        let program = try examplePrograms()
        let engine = DecisionEngine(program: program)
        var held = 0
        var variants: [String: Int] = [:]
        for customer in 0..<10_000 {
            var state = engine.newState(for: "customer-\(customer)")
            var outputs: [Output] = []
            outputs += engine.process(track("Delivery Confirmed", "customer-\(customer)", at: "2026-03-01T10:00Z"), at: at("2026-03-01T10:00Z"), state: &state).outputs
            outputs += engine.fireTimers(upTo: at("2026-03-04T00:00Z"), state: &state)
            if outputs.first?.kind == .holdout { held += 1 }
            let quota = program.workflows[0]
            if StableHash.bucket([quota.salt, "customer-\(customer)"]) >= 1000 {
                let name = Double(StableHash.bucket([quota.salt, "variant", "customer-\(customer)"])) < 5000 ? "a" : "b"
                variants[name, default: 0] += 1
            }
        }
        #expect((900...1100).contains(held), "held out \(held) of 10,000 at 10%")
        #expect(abs((variants["a"] ?? 0) - (variants["b"] ?? 0)) < 400, "\(variants)")
        #expect(StableHash.bucket(["post-delivery-warranty", "customer-1"]) < 1000)
        #expect(StableHash.bucket(["post-delivery-warranty", "customer-2"]) >= 1000)
    }

    @Test func stableHashIsFNV1aOfThePartsJoinedByAUnitSeparator() {
        #expect(StableHash.of("a".utf8) == 0xaf63_dc4c_8601_ec8c)
        #expect(StableHash.of(["a"]) == 0xaf63_dc4c_8601_ec8c)
        #expect(StableHash.of(["ab", "c"]) == StableHash.of("ab\u{1F}c".utf8))
        #expect(StableHash.of(["ab", "c"]) != StableHash.of(["a", "bc"]))
        #expect(StableHash.hex(0xaf63_dc4c_8601_ec8c) == "af63dc4c8601ec8c")
        #expect(StableHash.hex(1) == "0000000000000001")
    }

    @Test func aNumberHashesAsItsDecimalText() {
        for value: Int64 in [0, 7, 10, 99, 100, 1_772_323_200_000, -1, -86_400_000, .max, .min] {
            var byDigits = StableHasher()
            byDigits.combine("step")
            byDigits.combine(decimal: value)
            #expect(byDigits.value == StableHash.of(["step", String(value)]), "\(value)")
        }
    }
}

@Suite("State encoding")
struct StateCodecTests {
    @Test func everyStateOfAGeneratedStreamSurvivesEncoding() throws {
        let program = try examplePrograms()
        var replay = StreamEngine(program: program)
        for event in generatedStream(customers: 30, events: 3000, seed: 42) { _ = replay.process(event) }
        #expect(replay.states.values.contains { $0.run != nil })
        #expect(replay.states.values.contains { state in program.workflows.indices.contains { state.assignment(of: $0)?.variant != nil } })
        for state in replay.states.values {
            #expect(try StateCodec.decode(StateCodec.encode(state), program: program) == state)
        }
    }

    @Test func aStateFollowsItsDeclarationsByNameWhenTheWorkflowFilesChange() throws {
        let before = try program("""
            metrics:
              views_7d: { count: "Page Viewed", window: 7d, bucket: 1d }
              clicks_7d: { count: "Clicked", window: 7d, bucket: 1d }
            workflows:
              - id: nudge
                version: 1
                trigger: { event: "Page Viewed", count: 1, within: 1d }
                steps: [ { send: { channel: email, template: a } }, { wait: 5d }, { send: { channel: email, template: b } } ]
            """, shared: false)
        var engine = StreamEngine(program: before)
        _ = engine.process(track("Page Viewed", at: "2026-03-01T10:00:00Z"))
        _ = engine.process(track("Clicked", at: "2026-03-01T11:00:00Z"))
        let state = try #require(engine.states["c1"])
        #expect(state.run?.position == 2, "waiting in the first version's sequence")
        let bytes = StateCodec.encode(state)

        // Another metric in front, clicks counted differently, and the workflow in a new version
        // behind a new one.
        let after = try program("""
            metrics:
              sessions_7d: { count: "Session Started", window: 7d, bucket: 1d }
              views_7d: { count: "Page Viewed", window: 7d, bucket: 1d }
              clicks_7d: { count: "Clicked", window: 14d, bucket: 1d }
            workflows:
              - id: welcome
                trigger: { event: "Signed Up", count: 1, within: 1d }
                steps: [ { send: { channel: email, template: hello } } ]
              - id: nudge
                version: 2
                trigger: { event: "Page Viewed", count: 1, within: 1d }
                steps: [ { send: { channel: email, template: a } } ]
            """, shared: false)
        let moved = try StateCodec.decode(bytes, program: after, layout: StateLayout(before))
        let names = after.metrics.map(\.name)
        #expect(moved.metrics[names.firstIndex(of: "views_7d")!] == state.metrics[before.metrics.map(\.name).firstIndex(of: "views_7d")!])
        #expect(moved.metrics[names.firstIndex(of: "sessions_7d")!] == MetricState(), "a new metric starts empty")
        #expect(moved.metrics[names.firstIndex(of: "clicks_7d")!] == MetricState(), "a changed definition starts empty")
        let nudge = after.workflows.firstIndex { $0.id == "nudge" }!
        #expect(moved.workflows[nudge] == state.workflows[0], "entry history follows the id")
        #expect(moved.run == nil, "a run of version 1 does not continue in version 2")

        // Read under the same layout, the run goes on, at the workflow's new position.
        let unchanged = try program("""
            metrics:
              views_7d: { count: "Page Viewed", window: 7d, bucket: 1d }
              clicks_7d: { count: "Clicked", window: 7d, bucket: 1d }
            workflows:
              - id: welcome
                priority: 9
                trigger: { event: "Signed Up", count: 1, within: 1d }
                steps: [ { send: { channel: email, template: hello } } ]
              - id: nudge
                version: 1
                trigger: { event: "Page Viewed", count: 1, within: 1d }
                steps: [ { send: { channel: email, template: a } }, { wait: 5d }, { send: { channel: email, template: b } } ]
            """, shared: false)
        let kept = try StateCodec.decode(bytes, program: unchanged, layout: StateLayout(before))
        #expect(kept.run?.workflow == unchanged.workflows.firstIndex { $0.id == "nudge" })
        #expect(kept.run?.position == 2)
    }

    @Test func aStateWrittenByVersion2ReadsWithItsAssignmentAndLastSuppression() throws {
        // Written by version 2's encoder (at 723ccde): the first workflow entered
        // twice, the latest time assigned to variant b with conversion 1 attributed, and a
        // suppression by open_ticket and unhappy reported since.
        let hex = """
            02026331000000000300000000000005000000000000000000000000000302018084d284976700000000020b6f70656e5f7469636b65\
            7407756e6861707079018084d284976700010162020200000000000000000000000000000000000000000000000000000000
            """
        let bytes = stride(from: 0, to: hex.count, by: 2).map { offset in
            UInt8(hex.dropFirst(offset).prefix(2), radix: 16)!
        }
        let state = try StateCodec.decode(bytes, program: try examplePrograms())
        let entered = try #require(ISO8601.parse("2026-03-04T10:00:00Z"))
        #expect(state.workflows[0].entries == 2)
        #expect(state.assignment(of: 0) == WorkflowMemory.Assignment(time: entered, holdout: false, variant: "b", entry: 2, attributed: 2))
        #expect(state.workflows[0].lastSuppression == ReasonsDigest(["open_ticket", "unhappy"]))
        #expect(state.workflows[1] == WorkflowMemory())
        #expect(try StateCodec.decode(StateCodec.encode(state), program: try examplePrograms()) == state)
    }

    @Test func truncatedStateIsRefused() throws {
        let program = try examplePrograms()
        var state = CustomerState(customerID: "c1", program: program)
        state.traits = ["plan": "pro"]
        let bytes = StateCodec.encode(state)
        let error = #expect(throws: StateCodecError.self) { try StateCodec.decode(Array(bytes.dropLast(3)), program: program) }
        #expect(error?.description.hasPrefix("cannot decode customer state:") == true)
    }
}

@Suite("Customer lifetime")
struct CustomerLifetimeTests {
    private func program() throws -> Program {
        try UpshiftCoreTests.program("""
            settings: { idle_ttl: 30d }
            workflows:
              - id: warranty
                trigger: { after: "Delivery Confirmed", by: 2d }
                steps: [ { send: { channel: email, template: warranty } } ]
            """, shared: false)
    }

    @Test func idleCustomersExpireButOnesWithPendingTimersStay() throws {
        var replay = StreamEngine(program: try program())
        _ = replay.process(track("Page Viewed", "quiet", at: "2026-03-01T10:00Z"))
        _ = replay.process(track("Delivery Confirmed", "waiting", at: "2026-03-01T10:00Z"))
        #expect(replay.expireIdle(at: at("2026-03-20T00:00Z")) == 0)
        #expect(replay.expireIdle(at: at("2026-04-01T00:00Z")) == 1)
        #expect(replay.states.keys.sorted() == ["waiting"])
    }

    @Test func forgettingACustomerRemovesStateTimersAndAliases() throws {
        var replay = StreamEngine(program: try program())
        _ = replay.process(Event(kind: .alias, customerID: "known", userID: "known", messageID: "a", timestamp: at("2026-03-01T09:00Z"), previousID: "anon"))
        _ = replay.process(track("Delivery Confirmed", "known", at: "2026-03-01T10:00Z"))
        replay.forget("known")
        #expect(replay.states.isEmpty)
        #expect(replay.aliases.isEmpty)
        #expect(replay.finish().isEmpty)
    }

    @Test func aCustomerInAForgottenCustomersPlaceGetsNoneOfTheirTimers() throws {
        var replay = StreamEngine(program: try program())
        _ = replay.process(track("Delivery Confirmed", "gone", at: "2026-03-01T10:00Z"))
        replay.takeChanges { _, _ in }
        replay.forget("gone")
        _ = replay.process(track("Delivery Confirmed", "next", at: "2026-03-01T12:00Z"))
        var changes: [String: Bool] = [:]
        replay.takeChanges { customerID, state in changes[customerID] = state != nil }
        #expect(changes == ["gone": false, "next": true])
        #expect(replay.customerCount == 1)
        #expect(replay.state(of: "gone") == nil)
        let outputs = replay.finish()
        #expect(outputs.map(\.customerID) == ["next", "next"])
        #expect(outputs.map(\.eventTime) == [at("2026-03-03T12:00Z"), at("2026-03-03T12:00Z")])
    }

    @Test func timersDueTogetherFireInCustomerOrderWhateverTheOrderOfArrival() throws {
        var replay = StreamEngine(program: try program())
        for customer in ["c", "a", "b"] { _ = replay.process(track("Delivery Confirmed", customer, at: "2026-03-01T10:00Z")) }
        #expect(replay.finish().filter { $0.kind == .offer }.map(\.customerID) == ["a", "b", "c"])
    }

    @Test func anonymousEventsAfterAnAliasReachTheKnownCustomer() throws {
        var replay = StreamEngine(program: try program())
        _ = replay.process(Event(kind: .alias, customerID: "known", userID: "known", messageID: "a", timestamp: at("2026-03-01T09:00Z"), previousID: "anon"))
        _ = replay.process(Event(kind: .track, customerID: "anon", anonymousID: "anon", messageID: "d", timestamp: at("2026-03-01T10:00Z"), name: "Delivery Confirmed"))
        let outputs = replay.finish()
        #expect(outputs.map(\.customerID) == ["known", "known"])
        #expect(outputs.map(\.kind) == [.offer, .exit])
        #expect(replay.states["known"]?.aliases == ["anon"])
    }
}
