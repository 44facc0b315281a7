/// What a replay saw and decided, by kind: counted from what ``StreamEngine`` returns, so that a
/// live run, which has metrics of its own, does not pay for it.
public struct ReplaySummary: Sendable {
    public private(set) var events = 0
    public private(set) var duplicates = 0
    public private(set) var late = 0
    /// Records that could not be decoded, by the field at fault.
    public private(set) var rejected: [String: Int] = [:]
    /// Outputs counted by what the report groups them by. The keys are kept as parts, and joined
    /// into text only for the report: counting runs for every output.
    private var tallies: [Tally: Int] = [:]

    private enum Section: CaseIterable {
        case decisions, suppressions, holdouts, exits, conversions, guardrails, pauses

        var title: String {
            switch self {
            case .decisions: "decisions by workflow, step, channel, variant"
            case .suppressions: "suppressions by reason"
            case .holdouts: "holdouts by workflow"
            case .exits: "exits by workflow and reason"
            case .conversions: "conversions by workflow, arm, conversion"
            case .guardrails: "guardrails by workflow, arm, guardrail"
            case .pauses: "arms paused by a guardrail"
            }
        }
    }

    private struct Tally: Hashable {
        var section: Section
        var first: String
        var second = ""
        var third = ""
        var fourth = ""
        /// A paused arm's workflow version.
        var version = 0

        init(_ section: Section, _ first: String, _ second: String = "", _ third: String = "", _ fourth: String = "", version: Int = 0) {
            (self.section, self.first, self.second, self.third, self.fourth, self.version) = (section, first, second, third, fourth, version)
        }

        /// The key as the report prints it.
        var text: String {
            switch section {
            case .suppressions, .holdouts: first
            case .exits: "\(first) \(second)"
            case .conversions, .guardrails: "\(first) \(second) \(third)"
            case .decisions: "\(first) \(second) \(third) \(fourth)"
            case .pauses: "\(first)/\(version)/\(second) \(third)"
            }
        }
    }

    public init() {}

    /// Counts an event and what it led to.
    public mutating func record(_ result: DecisionEngine.Result) {
        events += 1
        if result.disposition == .duplicate { duplicates += 1 }
        if result.disposition == .late { late += 1 }
        record(result.outputs)
    }

    /// Counts a record that could not be decoded.
    public mutating func reject(_ error: EventError) {
        rejected[error.field, default: 0] += 1
    }

    /// Counts outputs made without an event: timers fired by the clock or at the stream's end.
    public mutating func record(_ outputs: [Output]) {
        // By index: `for output in outputs` would copy each output, every string retained.
        for index in outputs.indices {
            let workflow = outputs[index].workflowID ?? "-"
            let reason = outputs[index].reasons.first ?? "-"
            switch outputs[index].kind {
            case .offer, .task:
                let route = outputs[index].channel?.rawValue ?? outputs[index].queue ?? "-"
                tallies[Tally(.decisions, workflow, outputs[index].step ?? "-", route, outputs[index].variant ?? "-"), default: 0] += 1
            case .suppression:
                for reason in outputs[index].reasons { tallies[Tally(.suppressions, reason), default: 0] += 1 }
            case .holdout:
                tallies[Tally(.holdouts, workflow), default: 0] += 1
            case .exit:
                tallies[Tally(.exits, workflow, reason), default: 0] += 1
            case .conversion:
                tallies[Tally(.conversions, workflow, outputs[index].arm, reason), default: 0] += 1
            case .guardrail:
                tallies[Tally(.guardrails, workflow, outputs[index].arm, reason), default: 0] += 1
            case .pause:
                tallies[Tally(.pauses, workflow, outputs[index].variant ?? "-", reason, version: outputs[index].workflowVersion ?? 0), default: 0] += 1
            case .lateEvent:
                break
            }
        }
    }

    /// A plain-text report, sections sorted by key.
    public var report: String {
        var lines = ["events: \(events) (duplicates ignored: \(duplicates), late: \(late), rejected: \(rejected.values.reduce(0, +)))"]
        func section(_ title: String, _ counts: [String: Int]) {
            guard !counts.isEmpty else { return }
            lines.append("\(title):")
            for (key, count) in counts.sorted(by: { $0.key < $1.key }) { lines.append("  \(key): \(count)") }
        }
        section("rejected records by field", rejected)
        for kind in Section.allCases {
            section(kind.title, Dictionary(tallies.filter { $0.key.section == kind }.map { ($0.key.text, $0.value) }, uniquingKeysWith: +))
        }
        return lines.joined(separator: "\n")
    }
}
