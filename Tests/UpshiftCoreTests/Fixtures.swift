import Foundation
import Testing
@testable import UpshiftCore

/// An instant from a short ISO-8601 text; fails the test on a typo.
func at(_ text: String) -> Timestamp {
    guard let time = ISO8601.parse(text) else { fatalError("bad test time \(text)") }
    return time
}

private let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

/// The shipped example workflows, loaded together.
func examplePrograms() throws -> Program {
    let directory = repository.appendingPathComponent("deploy/workflows")
    let files = try ["shared.yaml", "saas-quota.yaml", "ecommerce-warranty.yaml", "subscription-renewal.yaml"].map { name in
        (name: name, text: try String(contentsOf: directory.appendingPathComponent(name), encoding: .utf8))
    }
    return try ProgramLoader.load(files)
}

/// A program from inline YAML, with the shared declarations of the examples in front.
func program(_ yaml: String, shared: Bool = true) throws -> Program {
    var files = [(name: "test.yaml", text: yaml)]
    if shared {
        let text = try String(contentsOf: repository.appendingPathComponent("deploy/workflows/shared.yaml"), encoding: .utf8)
        files.insert((name: "shared.yaml", text: text), at: 0)
    }
    return try ProgramLoader.load(files)
}


func track(_ name: String, _ customer: String = "c1", at time: String, _ properties: JSONObject = [:]) -> Event {
    Event(kind: .track, customerID: customer, userID: customer, messageID: "\(customer)-\(name)-\(time)-\(properties.members.count)", timestamp: at(time), name: name, properties: PackedJSONObject(properties))
}

func identify(_ customer: String = "c1", at time: String, _ traits: JSONObject) -> Event {
    Event(kind: .identify, customerID: customer, userID: customer, messageID: "\(customer)-identify-\(time)", timestamp: at(time), traits: PackedJSONObject(traits))
}

/// One customer's run through the engine, with the outputs in a short, exact form.
struct Simulation {
    var engine: DecisionEngine
    var state: CustomerState
    var outputs: [Output] = []

    init(_ program: Program, customer: String = "c1") {
        engine = DecisionEngine(program: program)
        state = engine.newState(for: customer)
    }

    @discardableResult
    mutating func send(_ event: Event) -> DecisionEngine.Disposition {
        let result = engine.process(event, at: event.timestamp, state: &state)
        outputs += result.outputs
        return result.disposition
    }

    mutating func advance(to time: String) {
        outputs += engine.fireTimers(upTo: at(time), state: &state)
    }

    /// `kind step channel-or-queue template [reasons] @time`, one per output.
    var lines: [String] {
        outputs.map { output in
            var parts = [output.kind.rawValue]
            if let step = output.step { parts.append(step) }
            if let channel = output.channel { parts.append(channel.rawValue) }
            if let queue = output.queue { parts.append(queue) }
            if let template = output.template { parts.append(template) }
            if !output.reasons.isEmpty { parts.append("[\(output.reasons.joined(separator: ","))]") }
            parts.append("@\(output.eventTime.description.prefix(16))")
            return parts.joined(separator: " ")
        }
    }
}

/// A customer id whose holdout position is outside the first `percent`, for workflows with a holdout.
func customerOutsideHoldout(salt: String, percent: Double) -> String {
    (1...).lazy.map { "customer-\($0)" }.first { Double(StableHash.bucket([salt, $0])) >= percent * 100 }!
}
