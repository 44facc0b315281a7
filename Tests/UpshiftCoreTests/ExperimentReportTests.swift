import Foundation
import Testing
@testable import UpshiftCore

/// A population whose true conversion rates per arm are known: each customer signs up (which
/// enters the workflow), and converts with its arm's probability some days later.
private struct KnownLiftPopulation {
    let customers: Int
    let rates: [String: Double]
    let salt = "upgrade-offer"
    var state: UInt64 = 99

    init(customers: Int, rates: [String: Double], state: UInt64 = 99) {
        self.customers = customers
        self.rates = rates
        self.state = state
    }

    /// The arm the engine will put a customer in, by the same stable hash.
    func arm(_ customer: String) -> String {
        if StableHash.bucket([salt, customer]) < 2_000 { return "holdout" }
        return Double(StableHash.bucket([salt, "variant", customer])) / 100 < 50 ? "a" : "b"
    }

    mutating func next() -> Double {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return Double((z ^ (z >> 31)) >> 11) / Double(1 << 53)
    }

    /// The events, in time order, and who converted within the window, by arm.
    mutating func generate() -> (events: [Event], converted: [String: Int]) {
        var events: [Event] = []
        var converted: [String: Int] = [:]
        let start = at("2026-03-01T00:00:00Z")
        for index in 0..<customers {
            let customer = "customer-\(index)"
            let signup = start + .minutes(Int64(index))
            events.append(Event(kind: .track, customerID: customer, userID: customer, messageID: "s-\(index)", timestamp: signup, name: "Signed Up"))
            let arm = arm(customer)
            if next() < rates[arm]! {
                converted[arm, default: 0] += 1
                let upgrade = signup + .hours(Int64(1 + next() * 240))
                events.append(Event(kind: .track, customerID: customer, userID: customer, messageID: "u-\(index)", timestamp: upgrade, name: "Plan Upgraded", properties: ["amount": 49]))
                // Upgrading again does not convert twice.
                events.append(Event(kind: .track, customerID: customer, userID: customer, messageID: "v-\(index)", timestamp: upgrade + .days(1), name: "Plan Upgraded", properties: ["amount": 49]))
            } else if next() < 0.05 {
                // Outside the attribution window: not a conversion.
                events.append(Event(kind: .track, customerID: customer, userID: customer, messageID: "l-\(index)", timestamp: signup + .days(20), name: "Plan Upgraded", properties: ["amount": 49]))
            }
        }
        return (events.sorted { ($0.timestamp, $0.messageID) < ($1.timestamp, $1.messageID) }, converted)
    }
}

/// One workflow with a 20% holdout and two variants, whose conversion is an upgrade within 14
/// days, and an unsubscribe guardrail.
private func upgradeOffer() throws -> Program {
    try program("""
        guardrails:
          unsubscribed: { event: "Unsubscribed", within: 30d }
        workflows:
          - id: upgrade-offer
            trigger: { event: "Signed Up", count: 1, within: 1d }
            holdout: 20%
            variants: { a: 50%, b: 50% }
            steps: [ { send: { channel: email, template: upgrade } } ]
            conversions:
              - { name: upgraded, event: "Plan Upgraded", within: 14d, revenue: amount }
        """, shared: false)
}

@Suite("Experiment report")
struct ExperimentReportTests {
    let program: Program

    init() throws {
        program = try upgradeOffer()
    }

    @Test func recoversAKnownLiftWithinItsIntervalAndCountsExactly() throws {
        var population = KnownLiftPopulation(customers: 20_000, rates: ["holdout": 0.05, "a": 0.08, "b": 0.05])
        let (events, converted) = population.generate()
        var replay = StreamEngine(program: program)
        let outputs = events.flatMap { replay.process($0) } + replay.finish()
        let report = ExperimentReport(outputs: outputs.compactMap(\.json.object))
        let result = try #require(report.workflows.first)
        #expect(result.arms.map(\.name) == ["holdout", "a", "b"])

        // Counts equal the outputs, and the truth, exactly.
        for arm in result.arms {
            let assigned = (0..<20_000).count { population.arm("customer-\($0)") == arm.name }
            #expect(arm.assigned == assigned, "\(arm.name) assigned")
            #expect(arm.converted["upgraded"] == converted[arm.name], "\(arm.name) converted")
            let conversionOutputs = outputs.filter { $0.kind == .conversion && $0.arm == arm.name }
            #expect(arm.converted["upgraded"] == conversionOutputs.count)
            #expect(arm.revenue == Double(conversionOutputs.count * 49))
            if arm.name != "holdout" {
                #expect(arm.exposed == Set(outputs.filter { $0.kind == .offer && $0.variant == arm.name }.map(\.customerID)).count)
            }
        }

        let a = try #require(result.lift(of: result.arms[1], for: "upgraded"))
        #expect(a.absoluteInterval.contains(0.03), "a: \(ExperimentReport.describe(a))")
        #expect(a.absoluteInterval.lowerBound > 0, "a's lift is detected")
    }

    /// A 95% interval holds the true lift in about 95% of populations: over 20 seeded populations
    /// and two arms (a true lift of +3 points, and none), it must in at least 36 of 40.
    @Test func intervalsCoverTheTrueLiftAsOftenAsTheyClaim() throws {
        var covered = 0
        var relativeCovered = 0
        for seed in 1...20 {
            var population = KnownLiftPopulation(customers: 4_000, rates: ["holdout": 0.05, "a": 0.08, "b": 0.05], state: UInt64(seed))
            var replay = StreamEngine(program: program)
            let outputs = population.generate().events.flatMap { replay.process($0) } + replay.finish()
            let result = try #require(ExperimentReport(outputs: outputs.compactMap(\.json.object)).workflows.first)
            let a = try #require(result.lift(of: result.arms[1], for: "upgraded"))
            let b = try #require(result.lift(of: result.arms[2], for: "upgraded"))
            covered += (a.absoluteInterval.contains(0.03) ? 1 : 0) + (b.absoluteInterval.contains(0) ? 1 : 0)
            relativeCovered += (a.relativeInterval?.contains(0.6) == true ? 1 : 0) + (b.relativeInterval?.contains(0) == true ? 1 : 0)
        }
        #expect(covered >= 36, "absolute: \(covered) of 40")
        #expect(relativeCovered >= 36, "relative: \(relativeCovered) of 40")
    }

    @Test func printsEachArmWithItsLiftAndGuardrails() throws {
        let record = { (type: String, customer: String, extra: JSONObject) -> JSONObject in
            var object: JSONObject = ["type": .string(type), "workflow_id": "w", "customer_id": .string(customer), "event_time": "2026-03-01T00:00:00.000Z"]
            for member in extra.members { object[member.key] = member.value }
            return object
        }
        var outputs: [JSONObject] = []
        for index in 0..<100 { outputs.append(record("holdout", "h\(index)", [:])) }
        for index in 0..<200 { outputs.append(record("offer", "t\(index)", ["step": "steps[0]"])) }
        for index in 0..<5 {
            outputs.append(record("conversion", "h\(index)", ["reasons": .array(["won"]), "evidence": .object(["arm": "holdout", "seconds_to_outcome": 86_400, "revenue": 10])]))
        }
        for index in 0..<20 {
            outputs.append(record("conversion", "t\(index)", ["reasons": .array(["won"]), "evidence": .object(["arm": "treatment", "seconds_to_outcome": .number(Double(index) * 3_600), "revenue": 10])]))
        }
        outputs.append(record("guardrail", "t7", ["reasons": .array(["unsubscribed"]), "evidence": .object(["arm": "treatment"])]))
        #expect(ExperimentReport(outputs: outputs).text == """
            workflow w
              arm           eligible   exposed  revenue/customer
              holdout            100         -              0.50
              treatment          200       200              1.00
              conversion won
                holdout          5/100    5.00%   median time to convert 1.0 d
                treatment       20/200   10.00%   lift +5.00 pts (95% CI -0.96 to +10.96), relative +100.0% (95% CI -22.7% to +417.2%)   median time to convert 0.4 d
              guardrail unsubscribed: holdout 0.00% (0), treatment 0.50% (1)

            """)
    }
}

/// The HTML report in a real browser: Chromium from Debian's packages, headless, which `make test`
/// installs when missing.
@Suite("Experiment report in a browser")
struct ExperimentReportPageTests {
    func chromium() throws -> String {
        let candidates = ["/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"]
        return try #require(candidates.first { FileManager.default.isExecutableFile(atPath: $0) }, "install chromium (make test does)")
    }

    /// The page's DOM after its scripts ran.
    func render(_ html: String) throws -> String {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("upshift-report-\(getpid()).html")
        try html.write(to: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: file) }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try chromium())
        process.arguments = ["--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=5000", "--dump-dom", file.absoluteString]
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
        let dom = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        return dom
    }

    @Test func rendersWithoutScriptErrorsAndShowsTheTerminalReportsNumbers() throws {
        let program = try upgradeOffer()
        var population = KnownLiftPopulation(customers: 3_000, rates: ["holdout": 0.05, "a": 0.08, "b": 0.05], state: 7)
        var events = population.generate().events
        events += (0..<40).map { index in
            Event(kind: .track, customerID: "customer-\(index * 7)", userID: "customer-\(index * 7)", messageID: "x-\(index)",
                  timestamp: at("2026-03-20T00:00:00Z"), name: "Unsubscribed")
        }
        var replay = StreamEngine(program: program)
        let outputs = events.flatMap { replay.process($0) } + replay.finish()
        let report = ExperimentReport(outputs: outputs.compactMap(\.json.object))
        let result = try #require(report.workflows.first)
        #expect(!result.guardrails.isEmpty)

        let dom = try render(report.html)
        #expect(dom.contains(#"data-errors="0""#), "no script error")
        #expect(dom.contains(#"data-charts="3""#), "three charts drawn")
        #expect(dom.components(separatedBy: "<polyline").count - 1 == result.arms.count, "a line per arm")
        for arm in result.arms {
            #expect(dom.contains(#"<td class="rate">\#(ExperimentReport.percent(arm.rate("upgraded")))</td>"#), "\(arm.name) rate")
            if let lift = result.lift(of: arm, for: "upgraded") {
                #expect(dom.contains(#"<td class="lift">\#(ExperimentReport.describe(lift))</td>"#), "\(arm.name) lift")
                #expect(report.text.contains(ExperimentReport.describe(lift)), "the terminal shows the same lift")
            }
            for guardrail in result.guardrails {
                #expect(dom.contains("<td>\(ExperimentReport.percent(arm.guardrailRate(guardrail)))</td>"))
            }
        }
    }
}
