/// A treatment arm of one version of a workflow: what a guardrail pause applies to.
public struct ArmKey: Sendable, Hashable, Comparable, CustomStringConvertible {
    public var workflow: String
    public var version: Int
    /// The variant's name, or `treatment` for a workflow without variants.
    public var arm: String

    public init(workflow: String, version: Int, arm: String) {
        self.workflow = workflow
        self.version = version
        self.arm = arm
    }

    public static func < (lhs: Self, rhs: Self) -> Bool { (lhs.workflow, lhs.version, lhs.arm) < (rhs.workflow, rhs.version, rhs.arm) }

    /// `quota-upgrade/3/b`: the control topic's record key.
    public var description: String { "\(workflow)/\(version)/\(arm)" }
}

/// A variant stopped because one of its guardrail rates went over its bound. It holds while the
/// workflow's version and the guardrail's bound and minimum sample are what they were: changing
/// any of them in the workflow files resumes the variant.
public struct Pause: Sendable, Hashable {
    public var key: ArmKey
    public var guardrail: String
    public var bound: Double
    public var minimumSample: Int

    public init(key: ArmKey, guardrail: String, bound: Double, minimumSample: Int) {
        self.key = key
        self.guardrail = guardrail
        self.bound = bound
        self.minimumSample = minimumSample
    }

    /// The pause a `pause` output (or its JSON, as the control topic holds it) records.
    public init?(_ output: JSONObject) {
        guard output["type"]?.string == "pause", let workflow = output["workflow_id"]?.string,
            let version = output["workflow_version"]?.number, let arm = output["variant"]?.string,
            case .array(let reasons)? = output["reasons"], let guardrail = reasons.first?.string,
            let evidence = output["evidence"]?.object, let bound = evidence["pause_above"]?.number,
            let minimum = evidence["minimum_sample"]?.number
        else { return nil }
        self.init(key: ArmKey(workflow: workflow, version: Int(version), arm: arm), guardrail: guardrail, bound: bound, minimumSample: Int(minimum))
    }

    /// Whether the pause still holds under `program`: same version, same guardrail settings.
    public func holds(in program: Program) -> Bool {
        guard program.workflows.contains(where: { $0.id == key.workflow && $0.version == key.version }),
            let guardrail = program.guardrails.first(where: { $0.name == self.guardrail })
        else { return false }
        return guardrail.pauseAbove == bound && guardrail.minimumSample == minimumSample
    }
}

/// Counts, per treatment arm, the customers assigned and those with each guardrail event, and
/// decides a pause when a rate goes over its guardrail's `pause_above` once the arm has
/// `minimum_sample` assignments. It sees what one engine sees: in a replay, every customer; in the
/// stream processor, one partition's customers, a random sample of all of them.
public struct GuardrailMonitor: Sendable {
    let program: Program
    private var assigned: [ArmKey: Int] = [:]
    private var hits: [ArmKey: [String: Int]] = [:]
    private var decided: Set<ArmKey> = []

    /// Whether any guardrail can pause: otherwise there is nothing to count. Asked on every event.
    public let isActive: Bool

    public init(program: Program) {
        self.program = program
        isActive = program.guardrails.contains { $0.pauseAbove != nil }
    }

    mutating func assign(_ key: ArmKey) {
        assigned[key, default: 0] += 1
    }

    /// Counts a guardrail output; returns the pause it tips, if any.
    mutating func observe(_ output: Output) -> (Pause, rate: Double, sample: Int)? {
        guard output.kind == .guardrail, output.arm != "holdout", let workflow = output.workflowID, let version = output.workflowVersion,
            let name = output.reasons.first, let guardrail = program.guardrails.first(where: { $0.name == name }),
            let bound = guardrail.pauseAbove
        else { return nil }
        let key = ArmKey(workflow: workflow, version: version, arm: output.arm)
        hits[key, default: [:]][name, default: 0] += 1
        let sample = assigned[key, default: 0]
        let rate = sample == 0 ? 0 : Double(hits[key]![name]!) / Double(sample)
        guard !decided.contains(key), sample >= guardrail.minimumSample, rate > bound else { return nil }
        decided.insert(key)
        return (Pause(key: key, guardrail: name, bound: bound, minimumSample: guardrail.minimumSample), rate, sample)
    }
}
