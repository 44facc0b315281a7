import Yams

/// Reads workflow files (YAML) into a ``Program``, reporting every problem with its file, line,
/// column and a hint, rather than stopping at the first.
///
/// Several files load into one program: metrics, suppressions and caps declared in one can be used
/// by workflows in another.
public enum ProgramLoader {
    /// - Throws: ``DiagnosticsError`` listing every problem found.
    public static func load(_ files: [(name: String, text: String)]) throws(DiagnosticsError) -> Program {
        var loader = Loader()
        let documents = files.compactMap { file in loader.parse(file.name, file.text).map { (file.name, $0) } }
        for (name, root) in documents { loader.declarations(root, file: name) }
        for (name, root) in documents { loader.workflows(root, file: name) }
        loader.checkWorkflowIDs()
        guard loader.diagnostics.isEmpty else { throw DiagnosticsError(diagnostics: loader.diagnostics) }
        loader.program.workflows = loader.program.workflows.enumerated()
            .sorted { ($0.element.priority, -$0.offset) > ($1.element.priority, -$1.offset) }
            .map(\.element)
        return loader.program
    }

    public static func load(yaml: String, file: String = "workflows.yaml") throws(DiagnosticsError) -> Program {
        try load([(file, yaml)])
    }
}

private struct Loader {
    var program = Program()
    var diagnostics: [Diagnostic] = []
    var file = ""
    var workflowMarks: [(id: String, file: String, mark: Mark?)] = []

    // MARK: Reporting

    mutating func report(_ node: Node?, _ message: String, hint: String? = nil) {
        let mark = node?.mark
        diagnostics.append(
            Diagnostic(file: file, line: mark?.line ?? 1, column: mark?.column ?? 1, message: message, hint: hint))
    }

    mutating func parse(_ name: String, _ text: String) -> Node? {
        file = name
        do {
            guard let root = try Yams.compose(yaml: text) else {
                report(nil, "the file is empty", hint: "declare metrics, suppressions, caps and workflows")
                return nil
            }
            guard root.mapping != nil else {
                report(root, "the top level must be a mapping", hint: "start with metrics:, suppressions:, caps: or workflows:")
                return nil
            }
            return root
        } catch let error as YamlError {
            diagnostics.append(Diagnostic(yaml: error, file: name))
            return nil
        } catch {
            diagnostics.append(Diagnostic(file: name, line: 1, column: 1, message: "not YAML: \(error)"))
            return nil
        }
    }

    // MARK: Typed access

    /// The pairs of a mapping, checking keys against `allowed`.
    mutating func pairs(_ node: Node, _ what: String, allowed: [String]? = nil) -> [(key: String, keyNode: Node, value: Node)] {
        guard let mapping = node.mapping else {
            report(node, "\(what) must be a mapping")
            return []
        }
        var result: [(String, Node, Node)] = []
        for (keyNode, value) in mapping {
            guard let key = keyNode.string else {
                report(keyNode, "keys of \(what) must be text")
                continue
            }
            if let allowed, !allowed.contains(key) {
                report(
                    keyNode, "unknown key \"\(key)\" in \(what)",
                    hint: closest(to: key, in: allowed).map { "did you mean \"\($0)\"?" }
                        ?? "expected one of \(allowed.joined(separator: ", "))")
                continue
            }
            result.append((key, keyNode, value))
        }
        return result
    }

    mutating func string(_ node: Node, _ what: String) -> String? {
        guard case .scalar(let scalar) = node, !scalar.string.isEmpty else {
            report(node, "\(what) must be text")
            return nil
        }
        return scalar.string
    }

    mutating func strings(_ node: Node, _ what: String) -> [String] {
        if case .scalar = node { return string(node, what).map { [$0] } ?? [] }
        guard let sequence = node.sequence else {
            report(node, "\(what) must be a list")
            return []
        }
        return sequence.compactMap { string($0, "each entry of \(what)") }
    }

    mutating func number(_ node: Node, _ what: String) -> Double? {
        guard case .scalar = node, let value = node.float ?? node.int.map(Double.init), value.isFinite else {
            report(node, "\(what) must be a number", hint: "for example 0.8 or 3")
            return nil
        }
        return value
    }

    mutating func integer(_ node: Node, _ what: String) -> Int? {
        guard case .scalar = node, let value = node.int else {
            report(node, "\(what) must be a whole number")
            return nil
        }
        return value
    }

    mutating func bool(_ node: Node, _ what: String) -> Bool? {
        guard case .scalar = node, let value = node.bool else {
            report(node, "\(what) must be true or false")
            return nil
        }
        return value
    }

    mutating func duration(_ node: Node, _ what: String) -> TimeSpan? {
        guard case .scalar(let scalar) = node, let span = TimeSpan(parsing: scalar.string) else {
            report(
                node, "\(what): \"\(node.string ?? "")\" is not a duration",
                hint: "write a whole number and a unit: 90s, 15m, 12h, 30d, 2w")
            return nil
        }
        return span
    }

    /// `10%`, `10` or `0.1`... only the first two: a bare number is percent.
    mutating func percent(_ node: Node, _ what: String) -> Double? {
        guard case .scalar(let scalar) = node else {
            report(node, "\(what) must be a percentage such as 10%")
            return nil
        }
        let text = scalar.string.hasSuffix("%") ? String(scalar.string.dropLast()) : scalar.string
        guard let value = Double(text.trimmingSpaces), value >= 0, value <= 100 else {
            report(node, "\(what): \"\(scalar.string)\" is not a percentage from 0% to 100%")
            return nil
        }
        return value
    }

    mutating func jsonValue(_ node: Node) -> JSONValue {
        switch node {
        case .scalar(let scalar):
            if scalar.style == .plain {
                if node.null != nil { return .null }
                if let bool = node.bool { return .bool(bool) }
                if let int = node.int { return .number(Double(int)) }
                if let float = node.float { return .number(float) }
            }
            return .string(scalar.string)
        case .sequence(let sequence):
            return .array(sequence.map { jsonValue($0) })
        case .mapping(let mapping):
            return .object(JSONObject(mapping.map { (key: $0.key.string ?? "", value: jsonValue($0.value)) }))
        case .alias:
            report(node, "YAML aliases are not supported here")
            return .null
        }
    }

    /// `trait.quota.api_calls` or `quota.api_calls` as a path.
    func traitPath(_ text: String) -> [String] {
        let path = text.split(separator: ".").map(String.init)
        return path.first == "trait" || path.first == "traits" ? Array(path.dropFirst()) : path
    }

    // MARK: Declarations

    mutating func declarations(_ root: Node, file name: String) {
        file = name
        for (key, _, value) in pairs(root, "the file", allowed: ["settings", "metrics", "suppressions", "caps", "guardrails", "workflows"]) {
            switch key {
            case "settings": settings(value)
            case "metrics":
                for (name, keyNode, definition) in pairs(value, "metrics") { metric(name, keyNode, definition) }
            case "suppressions":
                for (name, keyNode, definition) in pairs(value, "suppressions") { suppression(name, keyNode, definition) }
            case "caps":
                for (name, keyNode, definition) in pairs(value, "caps") { cap(name, keyNode, definition) }
            case "guardrails":
                for (name, _, definition) in pairs(value, "guardrails") { guardrail(name, definition) }
            default: break
            }
        }
    }

    /// `unsubscribe: { event: "Unsubscribed", within: 30d, pause_above: 2%, minimum_sample: 200 }`
    mutating func guardrail(_ name: String, _ node: Node) {
        let what = "guardrail \(name)"
        guard program.guardrails.count < 32 else { return report(node, "\(what): at most 32 guardrails may be declared") }
        let fields = Dictionary(
            pairs(node, what, allowed: ["event", "within", "after", "pause_above", "minimum_sample"]).map { ($0.key, $0.value) },
            uniquingKeysWith: { a, _ in a })
        guard let eventNode = fields["event"], let event = string(eventNode, "\(what): event") else {
            return report(node, "\(what) needs event: the event that counts against a workflow")
        }
        guard let withinNode = fields["within"], let within = duration(withinNode, "\(what): within") else {
            return report(node, "\(what) needs within: how long after an assignment the event counts", hint: "within: 30d")
        }
        let after = fields["after"].flatMap { string($0, "\(what): after") }
        let pauseAbove = fields["pause_above"].flatMap { percent($0, "\(what): pause_above") }.map { $0 / 100 }
        let minimum = fields["minimum_sample"].flatMap { integer($0, "\(what): minimum_sample") } ?? 100
        program.guardrails.append(
            Guardrail(name: name, event: event, within: within, after: after, pauseAbove: pauseAbove, minimumSample: minimum))
    }

    /// `- { name: upgraded, event: "Plan Upgraded", where: { tier: [pro] }, within: 14d, revenue: amount }`
    mutating func conversions(_ node: Node, _ what: String) -> [Conversion] {
        guard let list = node.sequence else {
            report(node, "\(what): conversions must be a list")
            return []
        }
        var conversions: [Conversion] = []
        for item in list {
            let fields = Dictionary(
                pairs(item, "\(what): a conversion", allowed: ["name", "event", "where", "within", "revenue"]).map { ($0.key, $0.value) },
                uniquingKeysWith: { a, _ in a })
            guard let eventNode = fields["event"], let event = string(eventNode, "\(what): conversion event") else {
                report(item, "\(what): a conversion needs event: the event that counts as success")
                continue
            }
            guard let withinNode = fields["within"], let within = duration(withinNode, "\(what): conversion within") else {
                report(item, "\(what): conversion \"\(event)\" needs within: its attribution window", hint: "within: 14d")
                continue
            }
            var filter: [PropertyMatch] = []
            if let whereNode = fields["where"] {
                for (property, _, value) in pairs(whereNode, "\(what): conversion where") {
                    let values: [JSONValue] = value.sequence.map { $0.map { jsonValue($0) } } ?? [jsonValue(value)]
                    filter.append(PropertyMatch(path: property.split(separator: ".").map(String.init), values: values))
                }
            }
            let name = fields["name"].flatMap { string($0, "\(what): conversion name") } ?? event
            let revenue = fields["revenue"].flatMap { string($0, "\(what): conversion revenue") }.map { $0.split(separator: ".").map(String.init) }
            conversions.append(Conversion(name: name, event: event, filter: filter, within: within, revenue: revenue))
        }
        if conversions.count > 32 { report(node, "\(what): at most 32 conversions") }
        return conversions
    }

    mutating func settings(_ node: Node) {
        for (key, _, value) in pairs(node, "settings", allowed: ["deduplication_window", "allowed_lateness", "idle_ttl"]) {
            guard let span = duration(value, key) else { continue }
            switch key {
            case "deduplication_window": program.settings.deduplicationWindow = span
            case "allowed_lateness": program.settings.allowedLateness = span
            default: program.settings.idleTTL = span
            }
        }
    }

    mutating func metric(_ name: String, _ keyNode: Node, _ node: Node) {
        let what = "metric \(name)"
        if program.metricIndex(name) != nil { return report(keyNode, "metric \"\(name)\" is declared twice") }
        let fields = pairs(node, what, allowed: ["count", "sum", "max", "distinct", "of", "where", "window", "bucket", "anchor"])
        let byKey = Dictionary(fields.map { ($0.key, $0.value) }, uniquingKeysWith: { a, _ in a })
        let aggregates = fields.filter { ["count", "sum", "max", "distinct"].contains($0.key) }
        guard aggregates.count == 1, let (kind, _, argument) = aggregates.first else {
            return report(node, "\(what) needs exactly one of count, sum, max or distinct", hint: "for example { sum: quantity, of: \"Usage Recorded\", window: 30d }")
        }
        let aggregate: MetricDefinition.Aggregate
        var event: String?
        switch kind {
        case "count":
            aggregate = .count
            event = string(argument, "\(what): count (the event to count)")
        default:
            guard let property = string(argument, "\(what): \(kind) (a property)") else { return }
            let path = property.split(separator: ".").map(String.init)
            aggregate = kind == "sum" ? .sum(property: path) : kind == "max" ? .max(property: path) : .distinct(property: path)
            guard let of = byKey["of"] else { return report(node, "\(what) needs of: the event whose property it reads") }
            event = string(of, "\(what): of")
        }
        guard let event else { return }
        var filter: [PropertyMatch] = []
        if let whereNode = byKey["where"] {
            for (property, _, value) in pairs(whereNode, "\(what): where") {
                let values: [JSONValue] = value.sequence.map { $0.map { jsonValue($0) } } ?? [jsonValue(value)]
                filter.append(PropertyMatch(path: property.split(separator: ".").map(String.init), values: values))
            }
        }
        guard let windowNode = byKey["window"] else {
            return report(node, "\(what) needs a window", hint: "a duration such as 30d, or day, week, month or billing_period")
        }
        let window: MetricDefinition.Window
        switch windowNode.string {
        case "day", "week", "month":
            window = .calendar(MetricDefinition.CalendarPeriod(rawValue: windowNode.string!)!)
        case "billing_period":
            guard let anchor = byKey["anchor"].flatMap({ string($0, "\(what): anchor") }) else {
                return report(windowNode, "\(what): a billing_period window needs anchor: the date trait the period starts from", hint: "anchor: trait.renewal_date")
            }
            window = .billingPeriod(anchorTrait: traitPath(anchor))
        default:
            guard let length = duration(windowNode, "\(what): window") else { return }
            let bucket: TimeSpan
            if let bucketNode = byKey["bucket"] {
                guard let parsed = duration(bucketNode, "\(what): bucket") else { return }
                guard parsed.milliseconds > 0, length.milliseconds % parsed.milliseconds == 0 else {
                    return report(bucketNode, "\(what): the window \(length) is not a whole number of \(parsed) buckets")
                }
                guard length.milliseconds / parsed.milliseconds <= 1024 else {
                    return report(bucketNode, "\(what): \(length.milliseconds / parsed.milliseconds) buckets is over the limit of 1024", hint: "use a larger bucket")
                }
                bucket = parsed
            } else {
                bucket = length >= .days(2) ? .days(1) : length >= .hours(2) ? .hours(1) : .minutes(1)
                guard length.milliseconds % bucket.milliseconds == 0 else {
                    return report(windowNode, "\(what): give a bucket that divides the window \(length)")
                }
            }
            window = .sliding(length: length, bucket: bucket)
        }
        program.metrics.append(MetricDefinition(name: name, aggregate: aggregate, event: event, filter: filter, window: window))
    }

    mutating func suppression(_ name: String, _ keyNode: Node, _ node: Node) {
        let what = "suppression \(name)"
        if program.suppressionIndex(name) != nil { return report(keyNode, "suppression \"\(name)\" is declared twice") }
        let fields = pairs(node, what, allowed: ["between", "within", "of", "trait"] + Self.comparisonKeys)
        let byKey = Dictionary(fields.map { ($0.key, $0.value) }, uniquingKeysWith: { a, _ in a })
        let rule: SuppressionDefinition.Rule
        if let between = byKey["between"] {
            let events = strings(between, "\(what): between")
            guard events.count == 2 else { return report(between, "\(what): between needs two events: [start, end]") }
            rule = .between(start: events[0], end: events[1])
        } else if let within = byKey["within"] {
            guard let span = duration(within, "\(what): within") else { return }
            guard let of = byKey["of"].flatMap({ string($0, "\(what): of") }) else {
                return report(node, "\(what) needs of: the event it follows")
            }
            rule = .within(span: span, event: of)
        } else if let trait = byKey["trait"] {
            guard let path = string(trait, "\(what): trait"), let comparison = comparison(fields, what) else { return }
            rule = .trait(path: traitPath(path), comparison)
        } else {
            return report(node, "\(what) needs between, within or trait", hint: "for example { within: 30d, of: \"Refund Issued\" }")
        }
        program.suppressions.append(SuppressionDefinition(name: name, rule: rule))
    }

    static let comparisonKeys = ["below", "above", "at_least", "at_most", "in", "not", "present"]

    /// The comparison among `fields` (keys below, above, at_least, at_most, in, not, present).
    mutating func comparison(_ fields: [(key: String, keyNode: Node, value: Node)], _ what: String) -> Comparison? {
        let found = fields.filter { Self.comparisonKeys.contains($0.key) }
        guard found.count == 1, let (key, _, value) = found.first else {
            report(fields.first?.keyNode, "\(what) needs exactly one of \(Self.comparisonKeys.joined(separator: ", "))")
            return nil
        }
        switch key {
        case "below": return number(value, "\(what): below").map(Comparison.below)
        case "above": return number(value, "\(what): above").map(Comparison.above)
        case "at_least": return number(value, "\(what): at_least").map(Comparison.atLeast)
        case "at_most": return number(value, "\(what): at_most").map(Comparison.atMost)
        case "present": return bool(value, "\(what): present").map(Comparison.present)
        case "in": return .oneOf(value.sequence.map { $0.map { jsonValue($0) } } ?? [jsonValue(value)])
        default: return .noneOf(value.sequence.map { $0.map { jsonValue($0) } } ?? [jsonValue(value)])
        }
    }

    mutating func cap(_ name: String, _ keyNode: Node, _ node: Node) {
        let what = "cap \(name)"
        let fields = pairs(node, what, allowed: ["max", "per", "channels", "from", "to", "timezone"])
        let byKey = Dictionary(fields.map { ($0.key, $0.value) }, uniquingKeysWith: { a, _ in a })
        let channels = byKey["channels"].map { channelSet($0, "\(what): channels") } ?? Set(Channel.allCases)
        if let maxNode = byKey["max"] {
            guard let maximum = integer(maxNode, "\(what): max") else { return }
            guard let perNode = byKey["per"] else { return report(node, "\(what) needs per: the window the maximum holds for") }
            guard let span = duration(perNode, "\(what): per") else { return }
            program.caps.append(FrequencyCap(name: name, maximum: maximum, span: span, channels: channels))
        } else if let fromNode = byKey["from"], let toNode = byKey["to"] {
            guard let from = clock(fromNode, "\(what): from"), let to = clock(toNode, "\(what): to") else { return }
            let zone: QuietHours.Zone
            let zoneText = byKey["timezone"].flatMap { string($0, "\(what): timezone") } ?? "UTC"
            if zoneText.hasPrefix("trait.") {
                zone = .trait(path: traitPath(zoneText), fallback: "UTC")
            } else {
                guard LocalTime.isKnownZone(zoneText) else {
                    return report(byKey["timezone"], "\(what): unknown time zone \"\(zoneText)\"", hint: "an IANA name such as Europe/Paris, or trait.timezone")
                }
                zone = .fixed(zoneText)
            }
            program.quietHours.append(QuietHours(name: name, from: from, to: to, zone: zone, channels: channels))
        } else {
            report(node, "\(what) needs max and per (a frequency cap) or from and to (quiet hours)")
        }
    }

    mutating func channelSet(_ node: Node, _ what: String) -> Set<Channel> {
        Set(strings(node, what).compactMap { name -> Channel? in
            guard let channel = Channel(rawValue: name) else {
                report(node, "\(what): unknown channel \"\(name)\"", hint: "channels are \(Channel.allCases.map(\.rawValue).joined(separator: ", "))")
                return nil
            }
            return channel
        })
    }

    /// `"21:00"` as minutes after midnight.
    mutating func clock(_ node: Node, _ what: String) -> Int? {
        let parts = (node.string ?? "").split(separator: ":")
        guard parts.count == 2, let hours = Int(parts[0]), let minutes = Int(parts[1]), (0..<24).contains(hours), (0..<60).contains(minutes)
        else {
            report(node, "\(what) must be a time of day such as \"21:00\"")
            return nil
        }
        return hours * 60 + minutes
    }

    // MARK: Workflows

    mutating func workflows(_ root: Node, file name: String) {
        file = name
        guard let node = root.mapping?["workflows"] else { return }
        guard let list = node.sequence else { return report(node, "workflows must be a list") }
        for item in list { workflow(item) }
    }

    mutating func checkWorkflowIDs() {
        var seen: Set<String> = []
        for entry in workflowMarks where !seen.insert(entry.id).inserted {
            file = entry.file
            diagnostics.append(
                Diagnostic(file: entry.file, line: entry.mark?.line ?? 1, column: entry.mark?.column ?? 1, message: "workflow id \"\(entry.id)\" is used twice"))
        }
    }

    mutating func workflow(_ node: Node) {
        let allowed = [
            "id", "version", "enabled", "priority", "trigger", "eligible", "suppress", "holdout", "variants", "steps", "exit_on",
            "reenter_after", "salt", "conversions",
        ]
        let fields = pairs(node, "a workflow", allowed: allowed)
        let byKey = Dictionary(fields.map { ($0.key, $0.value) }, uniquingKeysWith: { a, _ in a })
        guard let idNode = byKey["id"], let id = string(idNode, "a workflow's id") else {
            return report(node, "a workflow needs an id")
        }
        workflowMarks.append((id, file, idNode.mark))
        let what = "workflow \(id)"
        let errorsBefore = diagnostics.count
        let version = byKey["version"].flatMap { integer($0, "\(what): version") } ?? 1
        let enabled = byKey["enabled"].flatMap { bool($0, "\(what): enabled") } ?? true
        let priority = byKey["priority"].flatMap { integer($0, "\(what): priority") } ?? 0
        guard let triggerNode = byKey["trigger"] else { return report(node, "\(what) needs a trigger") }
        let trigger = self.trigger(triggerNode, what, workflowID: id)
        let eligibility = byKey["eligible"].map { conditions($0, "\(what): eligible") } ?? []
        let suppressions = (byKey["suppress"].map { strings($0, "\(what): suppress") } ?? []).compactMap { name -> Int? in
            guard let index = program.suppressionIndex(name) else {
                report(byKey["suppress"], "\(what): unknown suppression \"\(name)\"", hint: suggestion(name, program.suppressions.map(\.name), "suppressions"))
                return nil
            }
            return index
        }
        let holdout = byKey["holdout"].flatMap { percent($0, "\(what): holdout") } ?? 0
        var variants: [(String, Double)] = []
        if let variantsNode = byKey["variants"] {
            for (name, _, value) in pairs(variantsNode, "\(what): variants") {
                if let share = percent(value, "\(what): variant \(name)") { variants.append((name, share)) }
            }
            let total = variants.reduce(0) { $0 + $1.1 }
            if abs(total - 100) > 0.0001 { report(variantsNode, "\(what): variants add up to \(total)%, not 100%") }
        }
        guard let stepsNode = byKey["steps"] else { return report(node, "\(what) needs steps") }
        var compiler = StepCompiler()
        compile(stepsNode, label: "steps", into: &compiler, what)
        if stepsNode.sequence?.isEmpty == true { report(stepsNode, "\(what) has no steps") }
        let exitOn = byKey["exit_on"].map { strings($0, "\(what): exit_on") } ?? []
        let reenter = byKey["reenter_after"].flatMap { duration($0, "\(what): reenter_after") }
        let salt = byKey["salt"].flatMap { string($0, "\(what): salt") } ?? id
        let conversions = byKey["conversions"].map { self.conversions($0, what) } ?? []
        guard diagnostics.count == errorsBefore, let trigger else { return }
        program.workflows.append(
            Workflow(
                id: id, version: version, enabled: enabled, priority: priority, trigger: trigger, eligibility: eligibility,
                suppressions: suppressions, holdoutPercent: holdout, variants: variants, instructions: compiler.instructions,
                exitOn: exitOn, reenterAfter: reenter, salt: salt, conversions: conversions))
    }

    func suggestion(_ name: String, _ known: [String], _ kind: String) -> String {
        if let near = closest(to: name, in: known) { return "did you mean \"\(near)\"?" }
        return known.isEmpty ? "no \(kind) are declared" : "declared \(kind): \(known.joined(separator: ", "))"
    }

    mutating func metricIndex(_ name: String, _ node: Node?, _ what: String) -> Int? {
        guard let index = program.metricIndex(name) else {
            report(node, "\(what): unknown metric \"\(name)\"", hint: suggestion(name, program.metrics.map(\.name), "metrics"))
            return nil
        }
        return index
    }

    mutating func trigger(_ node: Node, _ what: String, workflowID: String) -> Trigger? {
        let fields = pairs(node, "\(what): trigger", allowed: ["ratio", "to", "at_least", "sustained", "metric", "event", "count", "within", "before", "after", "by"])
        let byKey = Dictionary(fields.map { ($0.key, $0.value) }, uniquingKeysWith: { a, _ in a })
        let sustained = byKey["sustained"].flatMap { duration($0, "\(what): sustained") } ?? .zero
        if let ratioNode = byKey["ratio"] {
            guard let metricName = string(ratioNode, "\(what): ratio"), let metric = metricIndex(metricName, ratioNode, what) else { return nil }
            guard let toNode = byKey["to"], let to = string(toNode, "\(what): to") else {
                report(node, "\(what): a ratio trigger needs to: the trait it is a share of", hint: "to: trait.quota.api_calls")
                return nil
            }
            guard let atLeast = byKey["at_least"].flatMap({ number($0, "\(what): at_least") }) else {
                report(node, "\(what): a ratio trigger needs at_least")
                return nil
            }
            return .ratio(metric: metric, to: traitPath(to), atLeast: atLeast, sustained: sustained)
        }
        if let metricNode = byKey["metric"] {
            guard let metricName = string(metricNode, "\(what): metric"), let metric = metricIndex(metricName, metricNode, what),
                let atLeast = byKey["at_least"].flatMap({ number($0, "\(what): at_least") })
            else { return nil }
            return .metric(index: metric, atLeast: atLeast, sustained: sustained)
        }
        if let eventNode = byKey["event"] {
            guard let event = string(eventNode, "\(what): event") else { return nil }
            let count = byKey["count"].flatMap { integer($0, "\(what): count") } ?? 1
            guard let withinNode = byKey["within"], let within = duration(withinNode, "\(what): within") else {
                report(node, "\(what): an event trigger needs within: the window the count is over")
                return nil
            }
            let bucket: TimeSpan = within >= .days(2) ? .hours(1) : .minutes(1)
            guard within.milliseconds % bucket.milliseconds == 0 else {
                report(withinNode, "\(what): within must be a whole number of \(bucket)")
                return nil
            }
            program.metrics.append(
                MetricDefinition(name: "\(workflowID).trigger", aggregate: .count, event: event, window: .sliding(length: within, bucket: bucket)))
            return .metric(index: program.metrics.count - 1, atLeast: Double(count), sustained: sustained)
        }
        if let beforeNode = byKey["before"] {
            guard let trait = string(beforeNode, "\(what): before"), let by = byKey["by"].flatMap({ duration($0, "\(what): by") }) else {
                report(node, "\(what): a before trigger needs by: how long before the date", hint: "{ before: trait.renewal_date, by: 30d }")
                return nil
            }
            return .beforeDate(trait: traitPath(trait), offset: by)
        }
        if let afterNode = byKey["after"] {
            guard let event = string(afterNode, "\(what): after"), let by = byKey["by"].flatMap({ duration($0, "\(what): by") }) else {
                report(node, "\(what): an after trigger needs by: how long after the event", hint: "{ after: \"Delivery Confirmed\", by: 2d }")
                return nil
            }
            return .afterEvent(name: event, offset: by)
        }
        report(node, "\(what): the trigger needs ratio, metric, event, before or after")
        return nil
    }

    mutating func conditions(_ node: Node, _ what: String) -> [Condition] {
        pairs(node, what).compactMap { key, keyNode, value in
            if key.hasPrefix("metric.") {
                let name = String(key.dropFirst("metric.".count))
                guard let index = metricIndex(name, keyNode, what), let comparison = comparison(of: value, "\(what): \(key)") else { return nil }
                return .metric(index: index, comparison)
            }
            if key.hasPrefix("suppression.") {
                let name = String(key.dropFirst("suppression.".count))
                guard let index = program.suppressionIndex(name) else {
                    report(keyNode, "\(what): unknown suppression \"\(name)\"", hint: suggestion(name, program.suppressions.map(\.name), "suppressions"))
                    return nil
                }
                guard let state = value.string, state == "active" || state == "inactive" else {
                    report(value, "\(what): \(key) must be active or inactive")
                    return nil
                }
                return .suppression(index: index, active: state == "active")
            }
            guard let comparison = comparison(of: value, "\(what): \(key)") else { return nil }
            return .trait(path: traitPath(key), comparison)
        }
    }

    /// A scalar or list means "one of"; a mapping holds one comparison key.
    mutating func comparison(of node: Node, _ what: String) -> Comparison? {
        switch node {
        case .mapping: comparison(pairs(node, what, allowed: Self.comparisonKeys), what)
        case .sequence(let sequence): .oneOf(sequence.map { jsonValue($0) })
        default: .oneOf([jsonValue(node)])
        }
    }

    // MARK: Steps

    mutating func compile(_ node: Node, label: String, into compiler: inout StepCompiler, _ what: String) {
        guard let list = node.sequence else { return report(node, "\(what): \(label) must be a list of steps") }
        var exited = false
        for (offset, step) in list.enumerated() {
            let stepLabel = "\(label)[\(offset)]"
            if exited {
                report(step, "\(what): \(stepLabel) is unreachable: it follows an exit", hint: "remove it, or move the exit after it")
                return
            }
            let fields = pairs(step, "\(what): \(stepLabel)", allowed: ["send", "task", "wait", "wait_for", "if", "then", "else", "exit"])
            let byKey = Dictionary(fields.map { ($0.key, $0.value) }, uniquingKeysWith: { a, _ in a })
            let kinds = fields.map(\.key).filter { ["send", "task", "wait", "wait_for", "if", "exit"].contains($0) }
            guard kinds.count == 1, let kind = kinds.first else {
                report(step, "\(what): \(stepLabel) needs exactly one of send, task, wait, wait_for, if or exit")
                continue
            }
            switch kind {
            case "send":
                if let operation = send(byKey["send"]!, "\(what): \(stepLabel)") { compiler.emit(operation, stepLabel) }
            case "task":
                let taskFields = pairs(byKey["task"]!, "\(what): \(stepLabel) task", allowed: ["queue", "template"])
                let task = Dictionary(taskFields.map { ($0.key, $0.value) }, uniquingKeysWith: { a, _ in a })
                guard let queue = task["queue"].flatMap({ string($0, "\(what): \(stepLabel) queue") }),
                    let template = task["template"].flatMap({ string($0, "\(what): \(stepLabel) template") })
                else {
                    report(byKey["task"], "\(what): \(stepLabel) task needs queue and template")
                    continue
                }
                compiler.emit(.task(queue: queue, template: template), stepLabel)
            case "wait":
                if let span = duration(byKey["wait"]!, "\(what): \(stepLabel) wait") { compiler.emit(.wait(span), stepLabel) }
            case "exit":
                compiler.emit(.exit, stepLabel)
                exited = true
            case "wait_for":
                let waitFields = pairs(byKey["wait_for"]!, "\(what): \(stepLabel) wait_for", allowed: ["event", "within"])
                let wait = Dictionary(waitFields.map { ($0.key, $0.value) }, uniquingKeysWith: { a, _ in a })
                guard let event = wait["event"].flatMap({ string($0, "\(what): \(stepLabel) event") }),
                    let within = wait["within"].flatMap({ duration($0, "\(what): \(stepLabel) within") })
                else {
                    report(byKey["wait_for"], "\(what): \(stepLabel) wait_for needs event and within")
                    continue
                }
                let at = compiler.emit(.waitFor(event: event, within: within, timeout: -1), stepLabel)
                branches(byKey, at: at, label: stepLabel, into: &compiler, what) { timeout in
                    .waitFor(event: event, within: within, timeout: timeout)
                }
            default:
                let conditions = conditions(byKey["if"]!, "\(what): \(stepLabel) if")
                let at = compiler.emit(.branch(conditions: conditions, otherwise: -1), stepLabel)
                branches(byKey, at: at, label: stepLabel, into: &compiler, what) { otherwise in
                    .branch(conditions: conditions, otherwise: otherwise)
                }
            }
            if kind != "wait_for", kind != "if", byKey["then"] != nil || byKey["else"] != nil {
                report(step, "\(what): \(stepLabel): then and else belong to wait_for and if steps")
            }
        }
    }

    /// Emits `then` and `else`, and patches the instruction at `at` to jump to `else`.
    mutating func branches(
        _ byKey: [String: Node], at: Int, label: String, into compiler: inout StepCompiler, _ what: String,
        patched: (Int) -> Instruction.Operation
    ) {
        if let thenNode = byKey["then"] { compile(thenNode, label: "\(label).then", into: &compiler, what) }
        if let elseNode = byKey["else"] {
            let jump = compiler.emit(.jump(-1), "\(label).then")
            compiler.patch(at, patched(compiler.instructions.count))
            compile(elseNode, label: "\(label).else", into: &compiler, what)
            compiler.patch(jump, .jump(compiler.instructions.count))
        } else {
            compiler.patch(at, patched(compiler.instructions.count))
        }
    }

    mutating func send(_ node: Node, _ what: String) -> Instruction.Operation? {
        let fields = pairs(node, "\(what) send", allowed: ["channel", "template", "offer"])
        let byKey = Dictionary(fields.map { ($0.key, $0.value) }, uniquingKeysWith: { a, _ in a })
        guard let channelNode = byKey["channel"], let name = string(channelNode, "\(what) channel") else {
            report(node, "\(what) send needs a channel")
            return nil
        }
        guard let channel = Channel(rawValue: name) else {
            report(channelNode, "\(what): unknown channel \"\(name)\"", hint: "channels are \(Channel.allCases.map(\.rawValue).joined(separator: ", ")); use a task step for customer success")
            return nil
        }
        let template = byKey["template"].flatMap { string($0, "\(what) template") }
        let offer = byKey["offer"].flatMap { jsonValue($0).object }
        guard template != nil || offer != nil else {
            report(node, "\(what) send needs a template, an offer, or both")
            return nil
        }
        return .send(channel: channel, template: template, offer: offer)
    }
}

/// Flattens nested step lists into instructions with jumps.
private struct StepCompiler {
    var instructions: [Instruction] = []

    @discardableResult
    mutating func emit(_ operation: Instruction.Operation, _ label: String) -> Int {
        instructions.append(Instruction(operation: operation, label: label))
        return instructions.count - 1
    }

    mutating func patch(_ index: Int, _ operation: Instruction.Operation) {
        instructions[index].operation = operation
    }
}

extension String {
    var trimmingSpaces: String {
        String(drop { $0 == " " }.reversed().drop { $0 == " " }.reversed())
    }
}
