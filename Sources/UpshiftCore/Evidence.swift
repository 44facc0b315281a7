/// Why a customer was considered for a workflow, kept as values while the engine decides: most
/// entry attempts end without an output (not eligible, a suppression already reported), so the
/// JSON that outputs carry is built only for the ones that make one.
enum Evidence: Sendable {
    /// A metric trigger: the value measured and, for a ratio, the limit it was divided by.
    case metric(TriggerWording, value: Double, ratio: Ratio?, atLeast: Double, since: Timestamp)
    /// A time trigger before a date trait, and the date it was computed from.
    case beforeDate(TriggerWording, date: Timestamp?)
    /// A time trigger after an event, and that event's time.
    case afterEvent(TriggerWording, at: Timestamp?)
    case none

    struct Ratio: Sendable {
        var limit: Double
        var ratio: Double
    }

    /// The evidence as outputs carry it, its members in a fixed order.
    var object: JSONObject {
        switch self {
        case .metric(let wording, let value, let ratio, let atLeast, let since):
            var members: [JSONObject.Member] = []
            members.reserveCapacity(10)
            members.append(.init("trigger", ratio == nil ? "metric" : "ratio"))
            members.append(.init("metric", wording.subject))
            members.append(.init("value", .number(value)))
            if let ratio {
                members.append(.init("of", wording.of))
                members.append(.init("limit", .number(ratio.limit)))
                members.append(.init("ratio", .number((ratio.ratio * 10_000).rounded() / 10_000)))
            }
            members.append(.init("at_least", .number(atLeast)))
            members.append(.init("window", wording.window))
            if let sustained = wording.sustained {
                members.append(.init("sustained", sustained))
                members.append(.init("since", .string(since.description)))
            }
            return JSONObject(members: members)
        case .beforeDate(let wording, let date):
            return JSONObject(members: [.init("trigger", "before_date"), .init("trait", wording.subject), .init("date", .string(date?.description ?? "")), .init("by", wording.by)])
        case .afterEvent(let wording, let time):
            return JSONObject(members: [.init("trigger", "after_event"), .init("event", wording.subject), .init("event_time", .string(time?.description ?? "")), .init("by", wording.by)])
        case .none:
            return [:]
        }
    }
}

/// What a workflow's trigger says of itself in every evidence it gives, written once when the
/// program is compiled: only the measured values and times differ from one entry to the next.
/// A class, so that an evidence holds one reference, not a copy of each text.
final class TriggerWording: Sendable {
    /// The metric's name, the date trait's path or the event's name.
    let subject: JSONValue
    /// A ratio's trait path.
    let of: JSONValue
    let window: JSONValue
    /// How long a metric trigger's condition must hold, when it must hold at all.
    let sustained: JSONValue?
    /// A time trigger's offset.
    let by: JSONValue

    init(_ trigger: Trigger, metrics: [MetricDefinition]) {
        var (subject, of, window, sustained, by): (String, String, String, TimeSpan?, TimeSpan?) = ("", "", "", nil, nil)
        switch trigger {
        case .ratio(let metric, let path, _, let span):
            (subject, of, window, sustained) = (metrics[metric].name, path.joined(separator: "."), Self.describe(metrics[metric].window), span)
        case .metric(let metric, _, let span):
            (subject, window, sustained) = (metrics[metric].name, Self.describe(metrics[metric].window), span)
        case .beforeDate(let path, let offset):
            (subject, by) = (path.joined(separator: "."), offset)
        case .afterEvent(let name, let offset):
            (subject, by) = (name, offset)
        }
        self.subject = .string(subject)
        self.of = .string(of)
        self.window = .string(window)
        self.sustained = sustained.flatMap { $0 > .zero ? .string($0.description) : nil }
        self.by = .string(by?.description ?? "")
    }

    private static func describe(_ window: MetricDefinition.Window) -> String {
        switch window {
        case .sliding(let length, _): length.description
        case .calendar(let period): period.rawValue
        case .billingPeriod: "billing_period"
        }
    }
}
