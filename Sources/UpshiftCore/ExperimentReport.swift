import Foundation

/// Did an upsell work, and did it hurt trust? Built from the outputs of a replay or of the output
/// topics: for each workflow and arm (each variant, or `treatment`, against `holdout`), who was
/// assigned and exposed, who converted, how fast, what it brought in, and the guardrail rates.
///
/// Counting rules, all by distinct customer:
/// - eligible (``Arm/assigned``): assigned to the arm on entry. To the holdout: a `holdout` output; assigned to a treatment arm: any output of the
///   customer's run in it (an offer, a task, a skipped step, an exit);
/// - exposed: at least one offer or task;
/// - converted: at least one conversion of that name attributed to the arm.
public struct ExperimentReport: Sendable, Hashable {
    public var workflows: [WorkflowResult]

    public struct WorkflowResult: Sendable, Hashable {
        public var workflow: String
        /// The holdout first, then the treatment arms by name.
        public var arms: [Arm]
        /// Conversion names, in the order first seen.
        public var conversions: [String]
        public var guardrails: [String]
        /// Customers who reached each step with an offer or task, per arm, in step order.
        public var funnel: [(step: String, customers: [String: Int])]

        public static func == (lhs: Self, rhs: Self) -> Bool {
            lhs.workflow == rhs.workflow && lhs.arms == rhs.arms && lhs.conversions == rhs.conversions
                && lhs.guardrails == rhs.guardrails && lhs.funnel.map(\.step) == rhs.funnel.map(\.step)
                && lhs.funnel.map(\.customers) == rhs.funnel.map(\.customers)
        }

        public func hash(into hasher: inout Hasher) { hasher.combine(workflow) }

        public var holdout: Arm? { arms.first { $0.name == "holdout" } }

        /// Lift of an arm's conversion rate over the holdout's, with a 95% interval.
        public func lift(of arm: Arm, for conversion: String) -> Lift? {
            guard arm.name != "holdout", let holdout, holdout.assigned > 0, arm.assigned > 0 else { return nil }
            return Lift(
                treated: arm.converted[conversion, default: 0], of: arm.assigned,
                baseline: holdout.converted[conversion, default: 0], of: holdout.assigned)
        }
    }

    public struct Arm: Sendable, Hashable {
        public var name: String
        public var assigned = 0
        public var exposed = 0
        /// Customers who converted, by conversion name.
        public var converted: [String: Int] = [:]
        /// Seconds from assignment to each conversion, by name, sorted.
        public var secondsToConvert: [String: [Double]] = [:]
        public var revenue = 0.0
        /// Customers with each guardrail event, by name.
        public var guardrails: [String: Int] = [:]
        /// Conversions per day since the first assignment, by name: day index to count.
        public var conversionsByDay: [String: [Int: Int]] = [:]

        public func rate(_ conversion: String) -> Double {
            assigned == 0 ? 0 : Double(converted[conversion, default: 0]) / Double(assigned)
        }

        public func guardrailRate(_ guardrail: String) -> Double {
            assigned == 0 ? 0 : Double(guardrails[guardrail, default: 0]) / Double(assigned)
        }

        public func medianSecondsToConvert(_ conversion: String) -> Double? {
            guard let values = secondsToConvert[conversion], !values.isEmpty else { return nil }
            let middle = values.count / 2
            return values.count % 2 == 1 ? values[middle] : (values[middle - 1] + values[middle]) / 2
        }

        /// Revenue over exposed customers (assigned ones for the holdout, which is never exposed).
        public var revenuePerCustomer: Double {
            let base = name == "holdout" ? assigned : exposed
            return base == 0 ? 0 : revenue / Double(base)
        }
    }

    /// The difference of two conversion rates, absolute and relative, with 95% intervals: a Wald
    /// interval for the difference, and one on the log of the ratio for the relative lift.
    public struct Lift: Sendable, Hashable {
        public var treatedRate: Double
        public var baselineRate: Double
        public var absolute: Double
        public var absoluteInterval: ClosedRange<Double>
        /// Nil when the baseline has no conversion.
        public var relative: Double?
        public var relativeInterval: ClosedRange<Double>?

        public init(treated: Int, of treatedCount: Int, baseline: Int, of baselineCount: Int) {
            let p1 = Double(treated) / Double(treatedCount)
            let p0 = Double(baseline) / Double(baselineCount)
            treatedRate = p1
            baselineRate = p0
            absolute = p1 - p0
            let error = (p1 * (1 - p1) / Double(treatedCount) + p0 * (1 - p0) / Double(baselineCount)).squareRoot()
            absoluteInterval = (absolute - 1.96 * error)...(absolute + 1.96 * error)
            if treated > 0, baseline > 0 {
                let logRatio = log(p1 / p0)
                let logError = ((1 - p1) / Double(treated) + (1 - p0) / Double(baseline)).squareRoot()
                relative = p1 / p0 - 1
                relativeInterval = (exp(logRatio - 1.96 * logError) - 1)...(exp(logRatio + 1.96 * logError) - 1)
            }
        }
    }

    /// Builds the report from output records (the JSON objects a replay writes or the output
    /// topics hold); records of other kinds are ignored.
    public init(outputs: some Sequence<JSONObject>) {
        var builders: [String: Builder] = [:]
        var order: [String] = []
        for output in outputs {
            guard let workflow = output["workflow_id"]?.string, let type = output["type"]?.string,
                let customer = output["customer_id"]?.string
            else { continue }
            if builders[workflow] == nil {
                builders[workflow] = Builder()
                order.append(workflow)
            }
            builders[workflow]!.add(type: type, customer: customer, output)
        }
        workflows = order.sorted().map { builders[$0]!.result(workflow: $0) }
    }

    private struct Builder {
        var assigned: [String: Set<String>] = [:]
        var exposed: [String: Set<String>] = [:]
        var converted: [String: [String: Set<String>]] = [:]
        var seconds: [String: [String: [Double]]] = [:]
        var revenue: [String: Double] = [:]
        var guardrails: [String: [String: Set<String>]] = [:]
        var conversionNames: [String] = []
        var guardrailNames: [String] = []
        var conversionTimes: [String: [String: [Timestamp]]] = [:]
        var firstAssignment: Timestamp?
        var steps: [String] = []
        var reached: [String: [String: Set<String>]] = [:]

        mutating func add(type: String, customer: String, _ output: JSONObject) {
            let variant = output["variant"]?.string
            let time = output["event_time"]?.string.flatMap(ISO8601.parse)
            switch type {
            case "holdout":
                assigned["holdout", default: []].insert(customer)
                if let time { firstAssignment = min(firstAssignment ?? time, time) }
            case "offer", "task", "exit", "suppression":
                let step = output["step"]?.string
                // An entry suppression (no step) means the customer never entered.
                guard type != "suppression" || step != nil else { return }
                let arm = variant ?? "treatment"
                assigned[arm, default: []].insert(customer)
                if let time { firstAssignment = min(firstAssignment ?? time, time) }
                if type == "offer" || type == "task", let step {
                    exposed[arm, default: []].insert(customer)
                    if !steps.contains(step) { steps.append(step) }
                    reached[step, default: [:]][arm, default: []].insert(customer)
                }
            case "conversion", "guardrail":
                let evidence = output["evidence"]?.object ?? JSONObject()
                let arm = evidence["arm"]?.string == "holdout" ? "holdout" : variant ?? "treatment"
                guard case .array(let reasons)? = output["reasons"], let name = reasons.first?.string else { return }
                if type == "conversion" {
                    if !conversionNames.contains(name) { conversionNames.append(name) }
                    converted[arm, default: [:]][name, default: []].insert(customer)
                    if let value = evidence["seconds_to_outcome"]?.number { seconds[arm, default: [:]][name, default: []].append(value) }
                    revenue[arm, default: 0] += evidence["revenue"]?.number ?? 0
                    if let time { conversionTimes[arm, default: [:]][name, default: []].append(time) }
                } else {
                    if !guardrailNames.contains(name) { guardrailNames.append(name) }
                    guardrails[arm, default: [:]][name, default: []].insert(customer)
                }
            default:
                break
            }
        }

        func result(workflow: String) -> WorkflowResult {
            let names = Set(assigned.keys).union(converted.keys).union(guardrails.keys)
            let ordered = (names.contains("holdout") ? ["holdout"] : []) + names.subtracting(["holdout"]).sorted()
            let arms = ordered.map { name in
                var arm = Arm(name: name)
                arm.assigned = assigned[name]?.count ?? 0
                arm.exposed = exposed[name]?.count ?? 0
                arm.converted = (converted[name] ?? [:]).mapValues(\.count)
                arm.secondsToConvert = (seconds[name] ?? [:]).mapValues { $0.sorted() }
                arm.revenue = revenue[name] ?? 0
                arm.guardrails = (guardrails[name] ?? [:]).mapValues(\.count)
                if let start = firstAssignment {
                    arm.conversionsByDay = (conversionTimes[name] ?? [:]).mapValues { times in
                        times.reduce(into: [:]) { days, time in days[Int((time - start).milliseconds / 86_400_000), default: 0] += 1 }
                    }
                }
                return arm
            }
            let funnel = steps.sorted(by: Self.stepOrder).map { step in (step, (reached[step] ?? [:]).mapValues(\.count)) }
            return WorkflowResult(workflow: workflow, arms: arms, conversions: conversionNames, guardrails: guardrailNames, funnel: funnel)
        }

        /// `steps[2]` before `steps[10]`, and `steps[5].then[0]` after `steps[5]`.
        static func stepOrder(_ a: String, _ b: String) -> Bool {
            func key(_ label: String) -> [Int] { label.split(whereSeparator: { !$0.isNumber }).compactMap { Int($0) } }
            return key(a).lexicographicallyPrecedes(key(b)) || (key(a) == key(b) && a < b)
        }
    }
}
