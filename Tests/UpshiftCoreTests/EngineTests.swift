import Testing
@testable import UpshiftCore

private let quotaWorkflow = """
    workflows:
      - id: quota
        trigger: { ratio: api_calls_30d, to: trait.quota.api_calls, at_least: 0.8, sustained: 3d }
        eligible: { plan: [starter, growth] }
        suppress: [open_ticket, billing_issue, recent_refund, recent_downgrade, unhappy]
        steps:
          - send: { channel: email, template: guide }
          - wait: 2d
          - send: { channel: email, template: comparison }
    """

private func quotaCustomer(_ simulation: inout Simulation, plan: String = "starter", usage: Double = 8600) {
    simulation.send(identify(at: "2026-03-01T09:00Z", ["plan": .string(plan), "quota": .object(["api_calls": 10000])]))
    simulation.send(track("Usage Recorded", at: "2026-03-01T10:00Z", ["metric": "api_calls", "quantity": .number(usage)]))
}

@Suite("Decision engine")
struct EngineTests {
    @Test func quotaHeldForThreeDaysStartsTheSequenceAndWaitsBetweenSteps() throws {
        var simulation = Simulation(try program(quotaWorkflow))
        quotaCustomer(&simulation)
        simulation.advance(to: "2026-03-07T00:00Z")

        #expect(simulation.lines == [
            "offer steps[0] email guide @2026-03-04T10:00",
            "offer steps[2] email comparison @2026-03-06T10:00",
            "exit [completed] @2026-03-06T10:00",
        ])
        let first = try #require(simulation.outputs.first)
        #expect(first.evidence["ratio"] == 0.86)
        #expect(first.evidence["window"] == "30d")
        #expect(first.evidence["since"] == "2026-03-01T10:00:00.000Z")
    }

    @Test func decisionIDsHashTheCustomerWorkflowKindAndStep() throws {
        var simulation = Simulation(try program(quotaWorkflow))
        quotaCustomer(&simulation)
        simulation.advance(to: "2026-03-07T00:00Z")

        func id(_ parts: String...) -> String { StableHash.hex(StableHash.of(["c1", "quota", "1"] + parts)) }
        #expect(simulation.outputs.map(\.decisionID) == [id("offer", "step", "1", "steps[0]"), id("offer", "step", "1", "steps[2]"), id("exit", "exit", "1")])
    }

    @Test func usageBelowTheRatioStartsNothing() throws {
        var simulation = Simulation(try program(quotaWorkflow))
        quotaCustomer(&simulation, usage: 7900)
        simulation.advance(to: "2026-03-10T00:00Z")
        #expect(simulation.lines == [])
    }

    @Test func aLoweredQuotaCountsFromItsIdentify() throws {
        var simulation = Simulation(try program(quotaWorkflow))
        quotaCustomer(&simulation, usage: 7900)
        simulation.send(identify(at: "2026-03-02T09:00Z", ["quota": .object(["api_calls": 9000])]))
        simulation.advance(to: "2026-03-06T00:00Z")
        #expect(simulation.lines == ["offer steps[0] email guide @2026-03-05T09:00"])
        #expect(simulation.outputs.first?.evidence["limit"] == 9000)
    }

    @Test func traitsChangedOutsideTheEngineAreReadAgain() throws {
        var simulation = Simulation(try program(quotaWorkflow))
        quotaCustomer(&simulation, usage: 7900)
        #expect(try StateCodec.decode(StateCodec.encode(simulation.state), program: simulation.engine.program) == simulation.state)
        simulation.state.traits.merge(["quota": .object(["api_calls": 9000])])
        simulation.send(track("Session Started", at: "2026-03-02T10:00Z"))
        simulation.advance(to: "2026-03-06T00:00Z")
        #expect(simulation.lines == ["offer steps[0] email guide @2026-03-05T10:00"])
    }

    @Test func aPlanChangedByIdentifyLetsTheHeldTriggerEnter() throws {
        var simulation = Simulation(try program(quotaWorkflow))
        quotaCustomer(&simulation, plan: "enterprise")
        simulation.send(track("Usage Recorded", at: "2026-03-01T11:00Z", ["metric": "api_calls", "quantity": 10]))
        simulation.send(identify(at: "2026-03-02T09:00Z", ["plan": "growth"]))
        simulation.advance(to: "2026-03-05T00:00Z")
        #expect(simulation.lines == ["offer steps[0] email guide @2026-03-04T10:00"])
    }

    @Test func consentGivenOutsideTheEngineIsReadAgain() throws {
        let yaml = """
            workflows:
              - id: texts
                trigger: { after: "Go", by: 1h }
                steps:
                  - send: { channel: sms, template: text }
            """
        var simulation = Simulation(try program(yaml))
        simulation.send(identify(at: "2026-03-01T09:00Z", ["consent": .object(["sms": false])]))
        simulation.send(track("Go", at: "2026-03-01T10:00Z"))
        simulation.state.traits.merge(["consent": .object(["sms": true])])
        simulation.advance(to: "2026-03-02T00:00Z")
        #expect(simulation.lines == ["offer steps[0] sms text @2026-03-01T11:00", "exit [completed] @2026-03-01T11:00"])
    }

    /// Trait facts are kept as bits for the first 64 suppressions and workflows; past them each
    /// is read from the traits when asked, with the same answers.
    @Test(arguments: [("pro", 9, ["offer steps[0] email offer @2026-03-01T10:00", "exit [completed] @2026-03-01T10:00"]), ("starter", 9, []), ("pro", 5, ["suppression [unhappy] @2026-03-01T10:00"])])
    func traitRulesPastTheSixtyFourthAreReadFromTheTraits(plan: String, nps: Int, expected: [String]) throws {
        let fillers = (0..<64).map { "  - id: filler\($0)\n    trigger: { after: \"Never\", by: 0s }\n    steps: [ { send: { channel: email, template: t } } ]" }
        let yaml = """
            suppressions:
            \((0..<64).map { "  quiet\($0): { within: 1d, of: \"Never\" }" }.joined(separator: "\n"))
              unhappy: { trait: nps, below: 7 }
            workflows:
            \(fillers.joined(separator: "\n"))
              - id: last
                trigger: { after: "Go", by: 0s }
                eligible: { plan: [pro] }
                suppress: [unhappy]
                steps:
                  - send: { channel: email, template: offer }
            """
        var simulation = Simulation(try program(yaml, shared: false))
        simulation.send(identify(at: "2026-03-01T09:00Z", ["plan": .string(plan), "nps": .number(Double(nps))]))
        simulation.send(track("Go", at: "2026-03-01T10:00Z"))
        #expect(simulation.lines == expected)
    }

    @Test func anAccountTraitFromAGroupCallDecidesEligibility() throws {
        let yaml = """
            workflows:
              - id: seats
                trigger: { after: "Go", by: 0s }
                eligible: { account.tier: [enterprise] }
                steps:
                  - send: { channel: email, template: seats }
            """
        var simulation = Simulation(try program(yaml))
        simulation.send(track("Go", at: "2026-03-01T10:00Z"))
        simulation.send(Event(kind: .group, customerID: "c1", userID: "c1", messageID: "g1", timestamp: at("2026-03-02T09:00Z"), traits: ["tier": "enterprise"], groupID: "acme"))
        simulation.send(track("Go", at: "2026-03-03T10:00Z"))
        #expect(simulation.lines == ["offer steps[0] email seats @2026-03-03T10:00", "exit [completed] @2026-03-03T10:00"])
        #expect(simulation.state.trait(["account", "tier"]) == "enterprise")
    }

    @Test func aBillingPeriodCountsFromTheRenewalDayOfEachMonth() throws {
        let yaml = """
            metrics:
              calls_this_period: { count: "Usage Recorded", window: billing_period, anchor: trait.renewal_date }
            workflows:
              - id: heavy
                trigger: { metric: calls_this_period, at_least: 2 }
                steps:
                  - send: { channel: email, template: heavy }
            """
        var simulation = Simulation(try program(yaml, shared: false))
        simulation.send(identify(at: "2026-03-01T09:00Z", ["renewal_date": "2026-01-15T00:00:00Z"]))
        simulation.send(track("Usage Recorded", at: "2026-03-14T10:00Z"))
        simulation.send(track("Usage Recorded", at: "2026-03-16T10:00Z"))
        simulation.send(track("Usage Recorded", at: "2026-03-20T10:00Z"))
        #expect(simulation.lines == ["offer steps[0] email heavy @2026-03-20T10:00", "exit [completed] @2026-03-20T10:00"])
    }

    @Test func ineligiblePlanStartsNothing() throws {
        var simulation = Simulation(try program(quotaWorkflow))
        quotaCustomer(&simulation, plan: "enterprise")
        simulation.advance(to: "2026-03-10T00:00Z")
        #expect(simulation.lines == [])
    }

    @Test func suppressesOfferWhileTicketIsOpenAndEntersOnceItCloses() throws {
        var simulation = Simulation(try program(quotaWorkflow))
        quotaCustomer(&simulation)
        simulation.send(track("Ticket Opened", at: "2026-03-02T08:00Z"))
        simulation.advance(to: "2026-03-05T00:00Z")
        simulation.send(track("Ticket Closed", at: "2026-03-05T09:00Z"))

        #expect(simulation.lines == [
            "suppression [open_ticket] @2026-03-04T10:00",
            "offer steps[0] email guide @2026-03-05T09:00",
        ])
    }

    @Test(arguments: [
        ("Payment Failed", "billing_issue"),
        ("Refund Issued", "recent_refund"),
        ("Plan Downgraded", "recent_downgrade"),
    ])
    func eachSuppressionHoldsTheWorkflowBack(event: String, reason: String) throws {
        var simulation = Simulation(try program(quotaWorkflow))
        quotaCustomer(&simulation)
        simulation.send(track(event, at: "2026-03-02T08:00Z"))
        simulation.advance(to: "2026-03-10T00:00Z")
        #expect(simulation.lines == ["suppression [\(reason)] @2026-03-04T10:00"])
    }

    @Test func lowNPSHoldsTheWorkflowBack() throws {
        var simulation = Simulation(try program(quotaWorkflow))
        quotaCustomer(&simulation)
        simulation.send(identify(at: "2026-03-02T08:00Z", ["nps": 5]))
        simulation.advance(to: "2026-03-10T00:00Z")
        #expect(simulation.lines == ["suppression [unhappy] @2026-03-04T10:00"])
    }

    @Test func refundOlderThanThirtyDaysNoLongerSuppresses() throws {
        var simulation = Simulation(try program(quotaWorkflow))
        simulation.send(track("Refund Issued", at: "2026-01-20T08:00Z"))
        quotaCustomer(&simulation)
        simulation.advance(to: "2026-03-05T00:00Z")
        #expect(simulation.lines == ["offer steps[0] email guide @2026-03-04T10:00"])
    }

    @Test func eventCountTriggerFiresOnTheNthEventInsideTheWindow() throws {
        let yaml = """
            workflows:
              - id: pricing
                trigger: { event: "Pricing Page Viewed", count: 3, within: 7d }
                steps: [ { send: { channel: in_app, template: compare-plans } } ]
            """
        var inside = Simulation(try program(yaml))
        for day in ["01", "03", "05"] { inside.send(track("Pricing Page Viewed", at: "2026-03-\(day)T10:00Z")) }
        #expect(inside.lines == ["offer steps[0] in_app compare-plans @2026-03-05T10:00", "exit [completed] @2026-03-05T10:00"])

        var spread = Simulation(try program(yaml))
        for day in ["01", "05", "12"] { spread.send(track("Pricing Page Viewed", at: "2026-03-\(day)T10:00Z")) }
        #expect(spread.lines == [])
    }

    @Test func distinctLockedFeaturesCountEachFeatureOnce() throws {
        let yaml = """
            workflows:
              - id: locked
                trigger: { metric: locked_features_7d, at_least: 3 }
                steps: [ { send: { channel: in_app, template: unlock-pro } } ]
            """
        var repeated = Simulation(try program(yaml))
        for hour in ["10", "11", "12"] { repeated.send(track("Feature Locked", at: "2026-03-01T\(hour):00Z", ["feature": "sso"])) }
        #expect(repeated.lines == [])

        var varied = Simulation(try program(yaml))
        for (hour, feature) in [("10", "sso"), ("11", "audit"), ("12", "sso"), ("13", "api")] {
            varied.send(track("Feature Locked", at: "2026-03-01T\(hour):00Z", ["feature": .string(feature)]))
        }
        #expect(varied.lines.first == "offer steps[0] in_app unlock-pro @2026-03-01T13:00")
    }

    /// States written before keep the hash of each distinct value's JSON text: the shortcut for
    /// plain strings must give the same hash.
    @Test(arguments: ["sso", "", "audit \"log\"", "tab\there", "é", 42, 0.5, true, .null, .array(["a", 1]), .object(["k": "v"])] as [JSONValue])
    func aDistinctValueHashesAsItsJSONText(value: JSONValue) {
        var writer = JSONWriter()
        writer.write(value)
        #expect(MetricState.distinctHash(value) == StableHash.of(writer.bytes))
    }

    @Test func renewalTriggerFiresThirtyDaysBeforeTheDateWithoutAnyEvent() throws {
        let yaml = """
            workflows:
              - id: renewal
                trigger: { before: trait.renewal_date, by: 30d }
                steps: [ { send: { channel: email, template: annual } } ]
            """
        var simulation = Simulation(try program(yaml))
        simulation.send(identify(at: "2026-03-01T09:00Z", ["renewal_date": "2026-05-01T00:00:00Z"]))
        simulation.advance(to: "2026-04-01T12:00Z")
        #expect(simulation.lines == ["offer steps[0] email annual @2026-04-01T00:00", "exit [completed] @2026-04-01T00:00"])
        #expect(simulation.outputs[0].evidence["trigger"] == "before_date")
    }

    @Test func deliveryTriggerFiresTwoDaysAfterTheEvent() throws {
        let yaml = """
            workflows:
              - id: warranty
                trigger: { after: "Delivery Confirmed", by: 2d }
                steps: [ { send: { channel: email, template: warranty } } ]
            """
        var simulation = Simulation(try program(yaml))
        simulation.send(track("Delivery Confirmed", at: "2026-03-01T12:00Z"))
        #expect(simulation.engine.nextTimer(simulation.state) == at("2026-03-03T12:00Z"))
        simulation.advance(to: "2026-03-04T00:00Z")
        #expect(simulation.lines == ["offer steps[0] email warranty @2026-03-03T12:00", "exit [completed] @2026-03-03T12:00"])
    }

    @Test func branchesOnEngagement() throws {
        let yaml = """
            workflows:
              - id: renewal
                trigger: { after: "Renewal Window Opened", by: 0s }
                steps:
                  - if: { metric.sessions_30d: { at_least: 3 } }
                    then: [ { send: { channel: email, template: annual-offer } } ]
                    else: [ { send: { channel: email, template: education } } ]
            """
        var engaged = Simulation(try program(yaml))
        for day in ["01", "02", "03"] { engaged.send(track("Session Started", at: "2026-03-\(day)T10:00Z")) }
        engaged.send(track("Renewal Window Opened", at: "2026-03-04T10:00Z"))
        engaged.advance(to: "2026-03-05T00:00Z")
        #expect(engaged.lines.first == "offer steps[0].then[0] email annual-offer @2026-03-04T10:00")

        var idle = Simulation(try program(yaml))
        idle.send(track("Renewal Window Opened", at: "2026-03-04T10:00Z"))
        idle.advance(to: "2026-03-05T00:00Z")
        #expect(idle.lines.first == "offer steps[0].else[0] email education @2026-03-04T10:00")
    }

    @Test func waitForTakesTheThenBranchOnTheEventAndTheElseBranchOnTimeout() throws {
        let yaml = """
            workflows:
              - id: trial
                trigger: { after: "Trial Offered", by: 0s }
                steps:
                  - wait_for: { event: "Trial Started", within: 3d }
                    then: [ { send: { channel: email, template: onboarding } } ]
                    else: [ { task: { queue: customer_success, template: outreach } } ]
            """
        var started = Simulation(try program(yaml))
        started.send(track("Trial Offered", at: "2026-03-01T10:00Z"))
        started.send(track("Trial Started", at: "2026-03-02T10:00Z"))
        #expect(started.lines == ["offer steps[0].then[0] email onboarding @2026-03-02T10:00", "exit [completed] @2026-03-02T10:00"])

        var ignored = Simulation(try program(yaml))
        ignored.send(track("Trial Offered", at: "2026-03-01T10:00Z"))
        ignored.advance(to: "2026-03-05T00:00Z")
        #expect(ignored.lines == ["task steps[0].else[0] customer_success outreach @2026-03-04T10:00", "exit [completed] @2026-03-04T10:00"])
    }

    @Test func exitOnEventEndsTheRun() throws {
        let yaml = """
            workflows:
              - id: nurture
                trigger: { after: "Signed Up", by: 0s }
                steps:
                  - send: { channel: email, template: one }
                  - wait: 2d
                  - send: { channel: email, template: two }
                exit_on: ["Plan Upgraded"]
            """
        var simulation = Simulation(try program(yaml))
        simulation.send(track("Signed Up", at: "2026-03-01T10:00Z"))
        simulation.send(track("Plan Upgraded", at: "2026-03-02T10:00Z"))
        simulation.advance(to: "2026-03-05T00:00Z")
        #expect(simulation.lines == ["offer steps[0] email one @2026-03-01T10:00", "exit [exit_on: Plan Upgraded] @2026-03-02T10:00"])
    }

    @Test func capsHoldAcrossWorkflows() throws {
        let yaml = """
            caps:
              two_a_week: { max: 2, per: 7d, channels: [email, in_app] }
            workflows:
              - id: first
                priority: 2
                trigger: { after: "Signed Up", by: 0s }
                steps:
                  - send: { channel: email, template: welcome }
                  - send: { channel: in_app, template: tour }
              - id: second
                priority: 1
                trigger: { after: "Feature Used", by: 0s }
                steps: [ { send: { channel: email, template: upsell } } ]
            """
        var simulation = Simulation(try program(yaml))
        simulation.send(track("Signed Up", at: "2026-03-01T10:00Z"))
        simulation.send(track("Feature Used", at: "2026-03-02T10:00Z"))
        simulation.send(track("Feature Used", at: "2026-03-09T10:00Z"))
        #expect(simulation.lines == [
            "offer steps[0] email welcome @2026-03-01T10:00",
            "offer steps[1] in_app tour @2026-03-01T10:00",
            "exit [completed] @2026-03-01T10:00",
            "suppression steps[0] email [cap:two_a_week] @2026-03-02T10:00",
            "exit [completed] @2026-03-02T10:00",
        ])
    }

    @Test func quietHoursDelayAcrossTheSpringDaylightSavingChange() throws {
        let yaml = """
            workflows:
              - id: warranty
                trigger: { after: "Delivery Confirmed", by: 2d }
                steps: [ { send: { channel: push, template: warranty } } ]
            """
        var simulation = Simulation(try program(yaml))
        simulation.send(identify(at: "2026-03-20T09:00Z", ["timezone": "Europe/Paris"]))
        // Due at 22:30 in Paris on Saturday 28 March; clocks go forward that night.
        simulation.send(track("Delivery Confirmed", at: "2026-03-26T21:30Z"))
        simulation.advance(to: "2026-03-30T00:00Z")
        // 08:00 in Paris on the 29th is 06:00 UTC (summer time), not 07:00.
        #expect(simulation.lines == ["offer steps[0] push warranty @2026-03-29T06:00", "exit [completed] @2026-03-29T06:00"])
    }

    @Test func quietHoursDelayButNeverDropAndEmailIsNotQuiet() throws {
        let yaml = """
            workflows:
              - id: late
                trigger: { after: "Evening Event", by: 0s }
                steps:
                  - send: { channel: email, template: now }
                  - send: { channel: push, template: morning }
            """
        var simulation = Simulation(try program(yaml))
        simulation.send(identify(at: "2026-06-01T09:00Z", ["timezone": "America/New_York"]))
        simulation.send(track("Evening Event", at: "2026-06-02T02:00Z"))  // 22:00 in New York
        simulation.advance(to: "2026-06-03T00:00Z")
        #expect(simulation.lines == [
            "offer steps[0] email now @2026-06-02T02:00",
            "offer steps[1] push morning @2026-06-02T12:00",
            "exit [completed] @2026-06-02T12:00",
        ])
    }

    @Test func smsNeedsConsentAndNoChannelOutlivesAnUnsubscribe() throws {
        let yaml = """
            workflows:
              - id: texts
                trigger: { after: "Go", by: 0s }
                reenter_after: 1d
                steps:
                  - send: { channel: sms, template: text }
                  - send: { channel: email, template: mail }
            """
        var simulation = Simulation(try program(yaml))
        simulation.send(track("Go", at: "2026-03-01T10:00Z"))
        simulation.send(identify(at: "2026-03-02T10:00Z", ["consent": .object(["sms": true])]))
        simulation.send(track("Go", at: "2026-03-09T10:00Z"))
        simulation.send(track("Unsubscribed", at: "2026-03-10T10:00Z", ["channel": "email"]))
        simulation.send(track("Go", at: "2026-03-17T10:00Z"))
        #expect(simulation.lines == [
            "suppression steps[0] sms [no_consent:sms] @2026-03-01T10:00",
            "offer steps[1] email mail @2026-03-01T10:00",
            "exit [completed] @2026-03-01T10:00",
            "offer steps[0] sms text @2026-03-09T10:00",
            "offer steps[1] email mail @2026-03-09T10:00",
            "exit [completed] @2026-03-09T10:00",
            "guardrail [unsubscribed] @2026-03-10T10:00",
            "offer steps[0] sms text @2026-03-17T10:00",
            "suppression steps[1] email [unsubscribed:email] @2026-03-17T10:00",
            "exit [completed] @2026-03-17T10:00",
        ])
    }

    @Test func lateEventIsReportedAndNotFoldedButOutOfOrderWithinLatenessIs() throws {
        var simulation = Simulation(try program(quotaWorkflow))
        simulation.send(track("Usage Recorded", at: "2026-03-01T10:00Z", ["metric": "api_calls", "quantity": 100]))
        #expect(simulation.send(track("Usage Recorded", at: "2026-03-01T09:30Z", ["metric": "api_calls", "quantity": 10])) == .applied)
        #expect(simulation.send(track("Usage Recorded", at: "2026-03-01T08:30Z", ["metric": "api_calls", "quantity": 1])) == .late)

        let metric = simulation.engine.metric(0)
        #expect(simulation.state.metrics[0].value(metric, at: at("2026-03-01T10:00Z"), anchor: nil) == 110)
        #expect(simulation.state.lateEvents == 1)
        #expect(simulation.lines == ["late_event [later than the allowed lateness of 1h] @2026-03-01T08:30"])
        #expect(simulation.outputs[0].evidence["behind_ms"] == 5_400_000)
    }

    @Test func resentMessageIDIsIgnored() throws {
        var simulation = Simulation(try program(quotaWorkflow))
        let event = track("Usage Recorded", at: "2026-03-01T10:00Z", ["metric": "api_calls", "quantity": 100])
        #expect(simulation.send(event) == .applied)
        #expect(simulation.send(event) == .duplicate)
        let metric = simulation.engine.metric(0)
        #expect(simulation.state.metrics[0].value(metric, at: at("2026-03-01T10:00Z"), anchor: nil) == 100)
    }

    @Test func metricForgetsWhatLeftTheWindow() throws {
        var simulation = Simulation(try program(quotaWorkflow))
        simulation.send(track("Usage Recorded", at: "2026-03-01T10:00Z", ["metric": "api_calls", "quantity": 100]))
        simulation.send(track("Usage Recorded", at: "2026-04-05T10:00Z", ["metric": "api_calls", "quantity": 5]))
        let metric = simulation.engine.metric(0)
        #expect(simulation.state.metrics[0].value(metric, at: at("2026-04-05T10:00Z"), anchor: nil) == 5)
        #expect(simulation.state.metrics[0].buckets.count == 1)
    }
}
