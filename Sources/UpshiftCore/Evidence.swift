/// Why a customer was considered for a workflow, kept as values while the engine decides: most
/// entry attempts end without an output (not eligible, a suppression already reported), so the
/// JSON that outputs carry is built only for the ones that make one.
enum Evidence: Sendable {
    /// A metric trigger: the value measured and, for a ratio, the limit it was divided by.
    case metric(DecisionEngine.Metric, value: Double, ratio: Ratio?, atLeast: Double, sustained: TimeSpan, since: Timestamp)
    /// A time trigger before a date trait, and the date it was computed from.
    case beforeDate(trait: [String], date: Timestamp?, by: TimeSpan)
    /// A time trigger after an event, and that event's time.
    case afterEvent(String, at: Timestamp?, by: TimeSpan)
    case none

    struct Ratio: Sendable {
        var trait: [String]
        var limit: Double
        var ratio: Double
    }

    /// The evidence as outputs carry it.
    var object: JSONObject {
        switch self {
        case .metric(let metric, let value, let ratio, let atLeast, let sustained, let since):
            var evidence: JSONObject = ["trigger": ratio == nil ? "metric" : "ratio", "metric": .string(metric.definition.name), "value": .number(value)]
            if let ratio {
                evidence["of"] = .string(ratio.trait.joined(separator: "."))
                evidence["limit"] = .number(ratio.limit)
                evidence["ratio"] = .number((ratio.ratio * 10_000).rounded() / 10_000)
            }
            evidence["at_least"] = .number(atLeast)
            evidence["window"] = .string(Self.describe(metric.definition.window))
            if sustained > .zero {
                evidence["sustained"] = .string(sustained.description)
                evidence["since"] = .string(since.description)
            }
            return evidence
        case .beforeDate(let path, let date, let offset):
            return ["trigger": "before_date", "trait": .string(path.joined(separator: ".")), "date": .string(date?.description ?? ""), "by": .string(offset.description)]
        case .afterEvent(let name, let time, let offset):
            return ["trigger": "after_event", "event": .string(name), "event_time": .string(time?.description ?? ""), "by": .string(offset.description)]
        case .none:
            return [:]
        }
    }

    private static func describe(_ window: MetricDefinition.Window) -> String {
        switch window {
        case .sliding(let length, _): length.description
        case .calendar(let period): period.rawValue
        case .billingPeriod: "billing_period"
        }
    }
}
