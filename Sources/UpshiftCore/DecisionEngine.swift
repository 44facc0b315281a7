/// The decision engine: takes a customer's state and an event or a due timer, and returns the
/// next state and what was decided.
///
/// It is deterministic: it reads no clock but the times it is given, and the same events in the
/// same order give byte-identical outputs however they are batched. Event-driven work is
/// evaluated at the event's time and timer-driven work at the timer's due time, so an output's id
/// and content never depend on when a timer was noticed; only `decision_time` records `now`.
public struct DecisionEngine: Sendable {
    /// The program and what is worked out from it once, behind one reference: copying an engine
    /// (every call does) costs one retain, not one per array of the program.
    private let compiled: Compiled
    public var program: Program { compiled.program }
    /// What each event name touches, worked out once: an event costs one lookup, not a scan.
    var routes: EventRoutes.Index { compiled.routes }
    /// Treatment arms paused by a guardrail, with the guardrail's name: no customer enters them,
    /// and a customer in one leaves it at its next step.
    public internal(set) var paused: [ArmKey: String] = [:]

    public init(program: Program) {
        compiled = Compiled(program: program)
    }

    private final class Compiled: Sendable {
        let program: Program
        let routes: EventRoutes.Index
        /// Each workflow's metric or ratio trigger in plain values, for the checks that run on
        /// every event: reading one costs no retain, where the trigger itself holds arrays.
        let thresholds: [Threshold?]
        /// The metric definitions, each behind a reference: taking one out costs one retain, not
        /// one for each of its strings and arrays.
        let metrics: [Metric]
        /// Each workflow's trigger as its evidence describes it.
        let wordings: [TriggerWording]
        /// The longest span of any cap: how long a sent message is remembered.
        let longestCap: TimeSpan
        /// A new customer's state, less the id. Its arrays are shared with every state made from
        /// it until that state writes to them: one it never writes (most customers' suppressions)
        /// is neither allocated nor copied.
        let emptyState: CustomerState

        init(program: Program) {
            self.program = program
            routes = EventRoutes.index(program)
            thresholds = program.workflows.map { Threshold($0.trigger) }
            metrics = program.metrics.map(Metric.init)
            wordings = program.workflows.map { TriggerWording($0.trigger, metrics: program.metrics) }
            longestCap = program.caps.map(\.span).max() ?? .zero
            emptyState = CustomerState(customerID: "", program: program)
        }
    }

    /// A metric or ratio trigger: at or above `atLeast`, held for `sustained`.
    struct Threshold: Sendable {
        let metric: Int
        let atLeast: Double
        let sustained: TimeSpan
        /// The metric is divided by a trait (`ratio ... to:`), kept in the state block's limits once read.
        let isRatio: Bool

        init?(_ trigger: Trigger) {
            switch trigger {
            case .ratio(let metric, _, let atLeast, let sustained): (self.metric, self.atLeast, self.sustained, isRatio) = (metric, atLeast, sustained, true)
            case .metric(let metric, let atLeast, let sustained): (self.metric, self.atLeast, self.sustained, isRatio) = (metric, atLeast, sustained, false)
            case .beforeDate, .afterEvent: return nil
            }
        }
    }

    /// Workflow `index`'s metric or ratio trigger, nil for a time trigger.
    func threshold(_ index: Int) -> Threshold? { compiled.thresholds[index] }

    final class Metric: Sendable {
        let definition: MetricDefinition
        /// What every event's trigger check reads, in plain values: reading the definition's
        /// enums copies their payloads, a retain and a release each.
        let bucketsPerWindow: Int64
        /// A sliding window's bucket length in milliseconds; nil for calendar and billing windows.
        let slidingBucket: Int64?
        let keepsMaximum: Bool
        let countsDistinct: Bool
        /// A `billing_period` window, whose buckets need the customer's anchor date.
        let isBilling: Bool

        init(_ definition: MetricDefinition) {
            self.definition = definition
            bucketsPerWindow = MetricState.bucketsPerWindow(definition.window)
            if case .sliding(_, let bucket) = definition.window { slidingBucket = bucket.milliseconds } else { slidingBucket = nil }
            if case .max = definition.aggregate { keepsMaximum = true } else { keepsMaximum = false }
            if case .distinct = definition.aggregate { countsDistinct = true } else { countsDistinct = false }
            if case .billingPeriod = definition.window { isBilling = true } else { isBilling = false }
        }

        /// Which bucket an instant falls in; nil for a billing window without its anchor date.
        func bucketIndex(_ time: Timestamp, anchor: Timestamp?) -> Int64? {
            if let slidingBucket { return floorDivide(time.rawValue, slidingBucket) }
            return MetricState.bucketIndex(definition.window, time, anchor: anchor)
        }
    }

    /// The definition of metric `index`, shared, not copied.
    func metric(_ index: Int) -> Metric { compiled.metrics[index] }

    /// How workflow `index`'s trigger describes itself in evidence.
    func wording(_ index: Int) -> TriggerWording { compiled.wordings[index] }

    var longestCap: TimeSpan { compiled.longestCap }

    /// What became of an event.
    public enum Disposition: String, Sendable, Hashable {
        case applied
        /// Its `messageId` was seen within the deduplication window; nothing changed.
        case duplicate
        /// It arrived later than the allowed lateness; it was counted and reported, not folded in.
        case late
    }

    public struct Result: Sendable, Hashable {
        public var disposition: Disposition
        public var outputs: [Output]
        /// When the customer's next timer is due after this event, if one is pending.
        public var nextTimer: Timestamp?
        /// The treatment arms the customer entered, for counting assignments.
        public var entered: [ArmKey] = []
    }

    public func newState(for customerID: String) -> CustomerState {
        var state = compiled.emptyState
        state.customerID = customerID
        return state
    }

    /// Applies an event. Timers due at or before the event's time fire first, in due order.
    public func process(_ event: Event, at now: Timestamp, state: inout CustomerState) -> Result {
        var context = Context(engine: self, decisionTime: now)
        var hasher = StableHasher()
        hasher.combine(event.messageID)
        let mark = hasher.value
        if state.block.records(state.block.recentMessages).contains(where: { $0.first == Int64(bitPattern: mark) }) {
            return Result(disposition: .duplicate, outputs: [], nextTimer: nextTimer(state))
        }
        rememberMessage(mark, at: event.timestamp, in: &state)

        if let latest = state.latestEventTime, event.timestamp < latest - program.settings.allowedLateness {
            state.lateEvents += 1
            var output = Output(
                kind: .lateEvent, decisionID: StableHash.hex(StableHash.of([state.customerID, event.messageID, "late"])),
                customerID: state.customerID, eventTime: event.timestamp, decisionTime: now)
            output.reasons = ["later than the allowed lateness of \(program.settings.allowedLateness)"]
            output.evidence = [
                "message_id": .string(event.messageID), "latest_event_time": .string(latest.description),
                "behind_ms": .number(Double((latest - event.timestamp).milliseconds)),
            ]
            return Result(disposition: .late, outputs: [output], nextTimer: nextTimer(state))
        }

        context.fireTimers(upTo: event.timestamp, state: &state)
        state.latestEventTime = max(state.latestEventTime ?? event.timestamp, event.timestamp)
        context.apply(event, to: &state)
        // After the event, which may have changed the traits: a new customer's facts are worked
        // out once, from their first traits. Timers fired before it read them without keeping them.
        learnTraitFacts(&state)
        context.evaluateTriggers(at: event.timestamp, state: &state)
        // What the event itself made due at once (a trigger with no delay).
        let next = context.fireTimers(upTo: event.timestamp, state: &state)
        return Result(disposition: .applied, outputs: context.outputs, nextTimer: next, entered: context.entered)
    }

    /// Fires every timer due at or before `now`, each at its own due time.
    public func fireTimers(upTo now: Timestamp, state: inout CustomerState) -> [Output] {
        var outputs: [Output] = []
        _ = fire(upTo: now, state: &state, into: &outputs)
        return outputs
    }

    /// As ``fireTimers(upTo:state:)``, appending the outputs to `outputs` (appending one list to
    /// another would copy each output), and telling which treatment arms the customer entered and
    /// when the next timer is due.
    func fire(upTo now: Timestamp, state: inout CustomerState, into outputs: inout [Output]) -> (entered: [ArmKey], nextTimer: Timestamp?) {
        learnTraitFacts(&state)
        var context = Context(engine: self, decisionTime: now)
        swap(&context.outputs, &outputs)
        let next = context.fireTimers(upTo: now, state: &state)
        swap(&context.outputs, &outputs)
        return (context.entered, next)
    }

    /// Works out what the rules read from the traits, if they changed since it was last done.
    func learnTraitFacts(_ state: inout CustomerState) {
        if state.traitFacts.value == nil { learnTraitFacts(&state, from: state.traitReader) }
    }

    /// Works out the facts and the billing anchors from traits that `trait` reads.
    func learnTraitFacts(_ state: inout CustomerState, from trait: ([String]) -> JSONValue?) {
        state.traitFacts.value = TraitFacts(suppressions: program.suppressions, workflows: program.workflows, trait: trait)
        state.billingAnchors.value = BillingAnchors(metrics: program.metrics, trait: trait)
    }

    /// What the rules read from the traits: as last worked out, or worked out now when the
    /// traits changed during this call.
    func traitFacts(_ state: CustomerState) -> TraitFacts {
        // Not `??`: its autoclosure would take a copy of the whole state on every call.
        if let known = state.traitFacts.value { return known }
        return TraitFacts(suppressions: program.suppressions, workflows: program.workflows, trait: state.traitReader)
    }

    /// When this customer's next timer is due, if one is pending.
    public func nextTimer(_ state: CustomerState) -> Timestamp? {
        var due = state.run?.waiting?.due
        let thresholds = compiled.thresholds
        // A memory as it was made schedules nothing.
        state.forEachWorkflowMemory { index, memory in
            if let scheduled = memory.scheduled { due = min(due ?? scheduled, scheduled) }
            if let check = memory.sustainedCheck(thresholds[index]?.sustained) { due = min(due ?? check, check) }
        }
        return due
    }

    /// True when the customer has had no event for the idle TTL and waits for nothing.
    public func isIdle(_ state: CustomerState, at now: Timestamp) -> Bool {
        guard nextTimer(state) == nil, let latest = state.latestEventTime else { return state.latestEventTime == nil }
        return latest + program.settings.idleTTL <= now
    }

    private func rememberMessage(_ mark: UInt64, at time: Timestamp, in state: inout CustomerState) {
        let horizon = max(state.latestEventTime ?? time, time) - program.settings.deduplicationWindow
        let cell = StateBlock.Cell(first: Int64(bitPattern: mark), second: time.rawValue)
        let part = state.block.recentMessages
        let recent = state.block.range(part)
        // Looked for first: removing would rewrite the list even when nothing has expired.
        if recent.contains(where: { state.block[$0].second < horizon.rawValue }) {
            state.block.removeAll(from: part, where: { $0.second < horizon.rawValue }, thenAppend: cell)
        } else {
            state.block.append(cell, to: part)
        }
        let kept = state.block.range(part)
        if kept.count > 32 { state.block.remove(kept.lowerBound..<kept.upperBound - 32, from: part) }
    }
}

/// One call's working set: the engine, the decision time and the outputs so far.
private struct Context {
    let engine: DecisionEngine
    /// The caller's `now` for event-driven work; a timer's due time while it fires.
    var decisionTime: Timestamp
    var outputs: [Output] = []
    /// Treatment arms entered in this call.
    var entered: [ArmKey] = []

    var program: Program { engine.program }

    // MARK: Applying an event

    mutating func apply(_ event: Event, to state: inout CustomerState) {
        switch event.kind {
        case .identify:
            let members = state.traits.merging(event.traits)
            state.traits = members.object
            let account = state.accountTraits
            let trait = { (path: [String]) in path.first == "account" ? account.value(at: path.dropFirst()) : members.value(at: path[...]) }
            engine.learnTraitFacts(&state, from: trait)
            scheduleDateTriggers(&state, at: event.timestamp, trait: trait)
        case .group:
            state.accountID = event.groupID
            state.accountTraits.merge(event.traits)
        case .alias:
            if let previous = event.previousID, !state.aliases.contains(previous) { state.aliases.append(previous) }
        case .track, .page, .screen:
            break
        }
        guard let name = eventName(event) else { return }
        if event.kind != .track, let page = event.name, !event.properties.hasMember(named: "name") {
            var properties = event.properties
            properties["name"] = .string(page)
            apply(event, named: name, properties: properties, to: &state)
        } else {
            // The event's own properties, lent: a local copy of them would retain them for nothing.
            apply(event, named: name, properties: event.properties, to: &state)
        }
    }

    /// Folds a named event (a track call, or a page or screen view) with these properties into
    /// the metrics, suppressions, channels, timers, attribution and the run it concerns.
    mutating func apply(_ event: Event, named name: String, properties: PackedJSONObject, to state: inout CustomerState) {
        let routes = engine.routes[name]
        if let routes {
            // By position: an iterator over each list cost about 70 instructions an event.
            for position in routes.metrics.indices {
                let index = routes.metrics[position]
                let metric = engine.metric(index)
                guard metric.definition.filter.allSatisfy({ $0.matches(properties) }) else { continue }
                let anchor = anchor(metric, index, state)
                state.block.add(
                    to: index, metric, properties: properties, at: event.timestamp, latest: state.latestEventTime ?? event.timestamp, anchor: anchor)
            }
            for position in routes.suppressionStarts.indices {
                state.recordSuppression(routes.suppressionStarts[position], start: true, at: event.timestamp)
            }
            for position in routes.suppressionEnds.indices {
                state.recordSuppression(routes.suppressionEnds[position], start: false, at: event.timestamp)
            }
        }
        if let subscribes = routes?.subscribes, let channel = properties["channel"]?.string.flatMap(Channel.init(rawValue:)) {
            if subscribes {
                state.subscribedChannels |= channel.bit
                state.unsubscribedChannels &= ~channel.bit
            } else {
                state.unsubscribedChannels |= channel.bit
                state.subscribedChannels &= ~channel.bit
            }
        }
        for index in routes?.afterEventWorkflows ?? [] {
            guard case .afterEvent(_, let offset) = program.workflows[index].trigger else { continue }
            state[workflow: index].schedule(event.timestamp + offset, from: event.timestamp)
        }
        if let routes { attribute(event, name: name, properties: properties, routes: routes, state: &state) }
        // The run is read in place, and copied only when the event ends or resumes it.
        guard let workflow = state.run?.workflow else { return }
        if program.workflows[workflow].exitOn.contains(name), let run = state.run {
            end(run, reason: "exit_on: \(name)", at: event.timestamp, state: &state)
            return
        }
        if case .event(let awaited, _, _)? = state.run?.waiting, awaited == name {
            state.run?.waiting = nil
            advance(at: event.timestamp, state: &state)
        }
    }

    /// The name a track call carries, or `Page Viewed` / `Screen Viewed`.
    func eventName(_ event: Event) -> String? {
        switch event.kind {
        case .track: event.name
        case .page: "Page Viewed"
        case .screen: "Screen Viewed"
        default: nil
        }
    }

    /// Metric `index`'s billing anchor date; nil for the other windows. Inlined, so that the
    /// test of the window comes before the state is passed, which took a copy of it.
    @inline(__always)
    func anchor(_ metric: DecisionEngine.Metric, _ index: Int, _ state: CustomerState) -> Timestamp? {
        guard metric.isBilling else { return nil }
        if let known = state.billingAnchors.value { return known[index] }
        return BillingAnchors(metrics: program.metrics, trait: state.traitReader)?[index]
    }

    mutating func scheduleDateTriggers(_ state: inout CustomerState, at time: Timestamp, trait: ([String]) -> JSONValue?) {
        for (index, workflow) in program.workflows.enumerated() {
            guard case .beforeDate(let path, let offset) = workflow.trigger else { continue }
            guard let text = trait(path)?.string, let date = ISO8601.parse(text) else {
                state[workflow: index].scheduled = nil
                continue
            }
            guard state[workflow: index].scheduledFrom != date else { continue }
            // A date already inside the offset triggers at once; a date already past, never.
            state[workflow: index].schedule(date > time ? max(date - offset, time) : nil, from: date)
        }
    }

    // MARK: Timers

    /// Fires what is due up to `limit`, and returns when the next timer is due after it: the
    /// loop's last look at the timers finds it, so the caller need not look again.
    @discardableResult
    mutating func fireTimers(upTo limit: Timestamp, state: inout CustomerState) -> Timestamp? {
        while let due = engine.nextTimer(state) {
            guard due <= limit else { return due }
            fire(at: due, state: &state)
        }
        return nil
    }

    /// Handles whatever is due at `due`: a waiting run, then time triggers and sustained checks.
    mutating func fire(at due: Timestamp, state: inout CustomerState) {
        let callerTime = decisionTime
        decisionTime = due
        defer { decisionTime = callerTime }
        // Taken out of the state to be changed: see ``advance(at:state:)``.
        if let waiting = state.run?.waiting, waiting.due == due, var run = state.run.take() {
            run.waiting = nil
            if case .event(_, _, let timeoutPosition) = waiting { run.position = timeoutPosition }
            state.run = run
            advance(at: due, state: &state)
        }
        for index in program.workflows.indices {
            // Read once for both checks, and again only if the entry attempt changed it.
            var memory = state[workflow: index]
            if memory.scheduled == due {
                state[workflow: index].scheduled = nil
                attemptEntry(index, at: due, evidence: timeTriggerEvidence(index, from: memory.scheduledFrom), state: &state)
                memory = state[workflow: index]
            }
            if memory.sustainedCheck(engine.threshold(index)?.sustained) == due {
                evaluateTrigger(index, at: due, state: &state)
            }
        }
    }

    /// What a time trigger reports as its evidence.
    func timeTriggerEvidence(_ index: Int, from: Timestamp?) -> Evidence {
        switch program.workflows[index].trigger {
        case .beforeDate: .beforeDate(engine.wording(index), date: from)
        case .afterEvent: .afterEvent(engine.wording(index), at: from)
        case .ratio, .metric: .none
        }
    }

    // MARK: Triggers and entry

    mutating func evaluateTriggers(at time: Timestamp, state: inout CustomerState) {
        for index in program.workflows.indices {
            evaluateTrigger(index, at: time, state: &state)
        }
    }

    /// Tracks whether a metric trigger's condition holds, and tries to enter once it has held
    /// long enough. Evidence is only built for an entry attempt: this runs on every event.
    mutating func evaluateTrigger(_ index: Int, at time: Timestamp, state: inout CustomerState) {
        guard let threshold = engine.threshold(index) else { return }
        var limit: Double?
        if threshold.isRatio {
            let traitLimit = self.traitLimit(index, &state)
            guard traitLimit > 0 else {
                state[workflow: index].conditionSince = nil
                return
            }
            limit = traitLimit
        }
        let metric = engine.metric(threshold.metric)
        let measured = state.block.value(of: threshold.metric, metric, at: time, anchor: anchor(metric, threshold.metric, state))
        let value = limit.map { measured / $0 } ?? measured
        // Each change to the memory in one call: each access finds the memory in the state block.
        guard value >= threshold.atLeast else {
            state[workflow: index].forgetCondition()
            return
        }
        let (since, heldLongEnough) = state[workflow: index].noteCondition(at: time, sustained: threshold.sustained)
        guard heldLongEnough, mayEnter(index, at: time, state) else { return }
        let evidence = Evidence.metric(
            engine.wording(index), value: measured, ratio: limit.map { Evidence.Ratio(limit: $0, ratio: value) }, atLeast: threshold.atLeast,
            since: since)
        attemptEntry(index, at: time, evidence: evidence, state: &state)
    }

    /// Workflow `index`'s ratio trigger limit, read from the traits only when they changed since.
    func traitLimit(_ index: Int, _ state: inout CustomerState) -> Double {
        if let known = state.block.value(keyed: Int64(index), in: .limits) { return Double(bitPattern: UInt64(bitPattern: known)) }
        guard case .ratio(_, let path, _, _) = program.workflows[index].trigger else { return 0 }
        let limit = state.trait(path)?.number ?? 0
        state.block.setValue(Int64(bitPattern: limit.bitPattern), keyed: Int64(index), in: .limits)
        return limit
    }

    /// The cheap checks before an entry: switched on, not in a workflow, allowed to re-enter.
    func mayEnter(_ index: Int, at time: Timestamp, _ state: CustomerState) -> Bool {
        let workflow = program.workflows[index]
        guard workflow.enabled, state.run == nil else { return false }
        guard let last = state[workflow: index].lastEntry else { return true }
        guard let reenter = workflow.reenterAfter else { return false }
        return time >= last + reenter
    }

    mutating func attemptEntry(_ index: Int, at time: Timestamp, evidence: Evidence, state: inout CustomerState) {
        let workflow = program.workflows[index]
        guard mayEnter(index, at: time, state) else { return }
        let memory = state[workflow: index]
        guard isEligible(index, workflow, at: time, state) else { return }
        let active = activeSuppressions(workflow, at: time, state)
        if !active.isEmpty {
            let digest = ReasonsDigest(active)
            if digest != memory.lastSuppression {
                state[workflow: index].lastSuppression = digest
                emit(.suppression, state, workflow, step: nil, variant: nil, at: time, id: .suppressedEntry(at: time)) { output in
                    output.reasons = active
                    output.evidence = evidence.object
                }
            }
            return
        }
        var holdoutHasher = StableHasher()
        holdoutHasher.combine(workflow.salt)
        holdoutHasher.combine(state.customerID)
        let heldOut = Double(StableHash.bucket(holdoutHasher)) < workflow.holdoutPercent * 100
        let variant = heldOut ? nil : variant(workflow, state.customerID)
        if !heldOut, !engine.paused.isEmpty, let guardrail = engine.paused[ArmKey(workflow: workflow.id, version: workflow.version, arm: variant ?? "treatment")] {
            let reason = "paused: \(guardrail)"
            let digest = ReasonsDigest([reason])
            if memory.lastSuppression != digest {
                state[workflow: index].lastSuppression = digest
                emit(.suppression, state, workflow, step: nil, variant: variant, at: time, id: .pausedEntry(at: time)) { output in
                    output.reasons = [reason]
                    output.evidence = evidence.object
                }
            }
            return
        }
        state.enter(workflow: index, at: time, holdout: heldOut, variant: variant)
        let entry = state[workflow: index].entries
        if heldOut {
            emit(.holdout, state, workflow, step: nil, variant: nil, at: time, id: .holdout(entry: entry)) { output in
                output.evidence = evidence.object
            }
            return
        }
        entered.append(ArmKey(workflow: workflow.id, version: workflow.version, arm: variant ?? "treatment"))
        state.run = Run(
            workflow: index, entry: entry, enteredAt: time, variant: variant, position: 0,
            waiting: nil, evidence: evidence.object)
        advance(at: time, state: &state)
    }

    // MARK: Attribution

    /// Attributes a conversion or guardrail event to each workflow whose latest assignment it
    /// follows within the window, once per assignment; keeps the time of a guardrail's precedent.
    mutating func attribute(_ event: Event, name: String, properties: PackedJSONObject, routes: EventRoutes, state: inout CustomerState) {
        let time = event.timestamp
        for (index, position) in routes.conversions {
            let conversion = program.workflows[index].conversions[position]
            guard conversion.filter.allSatisfy({ $0.matches(properties) }),
                let assignment = state.assignment(of: index), time >= assignment.time, time <= assignment.time + conversion.within,
                assignment.attributed & (1 << UInt64(position)) == 0
            else { continue }
            state[workflow: index].markAttributed(position)
            let revenue = conversion.revenue.flatMap { properties.value(at: $0)?.number }
            emitOutcome(.conversion, named: conversion.name, event: name, workflow: index, assignment, at: time, state, revenue: revenue)
        }
        for index in routes.guardrails {
            let guardrail = program.guardrails[index]
            for workflow in program.workflows.indices {
                guard let assignment = state.assignment(of: workflow), time >= assignment.time, time <= assignment.time + guardrail.within,
                    assignment.attributed & (1 << UInt64(32 + index)) == 0
                else { continue }
                if let after = guardrail.after {
                    guard let precedent = state.precedents[after], precedent >= assignment.time, time <= precedent + guardrail.within else { continue }
                }
                state[workflow: workflow].markAttributed(32 + index)
                emitOutcome(.guardrail, named: guardrail.name, event: name, workflow: workflow, assignment, at: time, state)
            }
        }
        if routes.isPrecedent { state.precedents[name] = time }
    }

    /// Adds a conversion or guardrail output for the assignment; `revenue`, when given, goes into
    /// its evidence last.
    mutating func emitOutcome(
        _ kind: Output.Kind, named name: String, event: String, workflow index: Int, _ assignment: WorkflowMemory.Assignment,
        at time: Timestamp, _ state: CustomerState, revenue: Double? = nil
    ) {
        emit(kind, state, program.workflows[index], step: nil, variant: assignment.variant, at: time, id: .outcome(kind, entry: assignment.entry, name: name)) {
            output in
            output.reasons = [name]
            output.evidence = [
                "arm": .string(assignment.holdout ? "holdout" : "treatment"),
                "event": .string(event),
                "assigned_at": .string(assignment.time.description),
                "seconds_to_outcome": .number(Double((time - assignment.time).milliseconds) / 1000),
            ]
            if let revenue { output.evidence["revenue"] = .number(revenue) }
        }
    }

    func variant(_ workflow: Workflow, _ customerID: String) -> String? {
        guard !workflow.variants.isEmpty else { return nil }
        var hasher = StableHasher()
        hasher.combine(workflow.salt)
        hasher.combine("variant")
        hasher.combine(customerID)
        let position = Double(StableHash.bucket(hasher)) / 100
        var edge = 0.0
        for variant in workflow.variants {
            edge += variant.percent
            if position < edge { return variant.name }
        }
        return workflow.variants.last?.name
    }

    /// Whether the customer may enter workflow `index` by its eligibility: trait conditions are
    /// read from the facts worked out after the traits last changed, the others now.
    func isEligible(_ index: Int, _ workflow: Workflow, at time: Timestamp, _ state: CustomerState) -> Bool {
        guard engine.traitFacts(state).isEligible(index, state, program: program) else { return false }
        return workflow.eligibility.allSatisfy { condition in
            if case .trait = condition { return true }
            return holds(condition, at: time, state)
        }
    }

    func holds(_ condition: Condition, at time: Timestamp, _ state: CustomerState) -> Bool {
        switch condition {
        case .trait(let path, let comparison):
            comparison.holds(for: state.trait(path))
        case .metric(let index, let comparison):
            comparison.holds(
                for: .number(state.block.value(of: index, engine.metric(index), at: time, anchor: anchor(engine.metric(index), index, state))))
        case .suppression(let index, let active):
            isSuppressed(index, at: time, state) == active
        }
    }

    /// The names of the workflow's suppressions active at `time`; no array is made when there are none.
    func activeSuppressions(_ workflow: Workflow, at time: Timestamp, _ state: CustomerState) -> [String] {
        var active: [String] = []
        for index in workflow.suppressions where isSuppressed(index, at: time, state) {
            active.append(program.suppressions[index].name)
        }
        return active
    }

    func isSuppressed(_ index: Int, at time: Timestamp, _ state: CustomerState) -> Bool {
        if case .trait = program.suppressions[index].rule { return engine.traitFacts(state).isSuppressed(index, state, program: program) }
        return state.suppression(index).isActive(program.suppressions[index].rule, at: time)
    }

    // MARK: Running steps

    /// Executes the run's instructions from its position until it waits or ends. The run is
    /// taken out of the state while it moves, so that its fields are written in place: left in
    /// the state too, they were shared, and every step copied them into a new block.
    mutating func advance(at time: Timestamp, state: inout CustomerState) {
        while var run = state.run.take() {
            guard run.waiting == nil else {
                state.run = run
                return
            }
            let workflow = program.workflows[run.workflow]
            if !engine.paused.isEmpty, let guardrail = engine.paused[ArmKey(workflow: workflow.id, version: workflow.version, arm: run.variant ?? "treatment")] {
                return end(run, reason: "paused: \(guardrail)", at: time, state: &state)
            }
            guard run.position < workflow.instructions.count else {
                return end(run, reason: "completed", at: time, state: &state)
            }
            let instruction = workflow.instructions[run.position]
            switch instruction.operation {
            case .send(let channel, let template, let offer):
                let active = activeSuppressions(workflow, at: time, state)
                if !active.isEmpty {
                    emit(.suppression, state, workflow, step: instruction.label, variant: run.variant, at: time, id: .step(entry: run.entry, label: instruction.label)) { output in
                        output.reasons = active
                        output.channel = channel
                        output.evidence = run.evidence
                    }
                    return end(run, reason: "suppressed", at: time, state: &state)
                }
                if let blocked = blockedReason(channel, state) {
                    skip(run, instruction, channel: channel, reason: blocked, at: time, state)
                } else if let resume = quietHoursEnd(channel, at: time, state) {
                    run.waiting = .until(resume)
                    state.run = run
                    return
                } else if let cap = capReached(channel, at: time, state) {
                    skip(run, instruction, channel: channel, reason: "cap:\(cap)", at: time, state)
                } else {
                    emit(.offer, state, workflow, step: instruction.label, variant: run.variant, at: time, id: .step(entry: run.entry, label: instruction.label)) { output in
                        output.channel = channel
                        output.template = template
                        output.offer = offer
                        output.evidence = run.evidence
                    }
                    recordSent(channel, at: time, state: &state)
                }
                run.position += 1
            case .task(let queue, let template):
                emit(.task, state, workflow, step: instruction.label, variant: run.variant, at: time, id: .step(entry: run.entry, label: instruction.label)) { output in
                    output.queue = queue
                    output.template = template
                    output.evidence = run.evidence
                }
                run.position += 1
            case .wait(let span):
                run.position += 1
                run.waiting = .until(time + span)
            case .waitFor(let event, let within, let timeout):
                run.position += 1
                run.waiting = .event(name: event, timeout: time + within, timeoutPosition: timeout)
            case .branch(let conditions, let otherwise):
                run.position = conditions.allSatisfy { holds($0, at: time, state) } ? run.position + 1 : otherwise
            case .jump(let target):
                run.position = target
            case .exit:
                return end(run, reason: "exit step \(instruction.label)", at: time, state: &state)
            }
            state.run = run
        }
    }

    /// Reports a send step skipped, and why; the caller moves the run past it.
    mutating func skip(_ run: Run, _ instruction: Instruction, channel: Channel, reason: String, at time: Timestamp, _ state: CustomerState) {
        let workflow = program.workflows[run.workflow]
        emit(.suppression, state, workflow, step: instruction.label, variant: run.variant, at: time, id: .step(entry: run.entry, label: instruction.label)) { output in
            output.channel = channel
            output.reasons = [reason]
            output.evidence = run.evidence
        }
    }

    mutating func end(_ run: Run, reason: String, at time: Timestamp, state: inout CustomerState) {
        let workflow = program.workflows[run.workflow]
        emit(.exit, state, workflow, step: nil, variant: run.variant, at: time, id: .exit(entry: run.entry)) { output in
            output.reasons = [reason]
        }
        state.run = nil
    }

    /// Why a channel may not be used for this customer, if it may not.
    func blockedReason(_ channel: Channel, _ state: CustomerState) -> String? {
        let facts = engine.traitFacts(state)
        if state.unsubscribedChannels & channel.bit != 0 || facts.isUnsubscribed(channel) {
            return "unsubscribed:\(channel.rawValue)"
        }
        let consent = facts.consent(channel)
        if channel == .sms, state.subscribedChannels & Channel.sms.bit == 0, consent != true {
            return "no_consent:sms"
        }
        if consent == false { return "no_consent:\(channel.rawValue)" }
        return nil
    }

    /// When quiet hours that cover the channel end, if `time` falls inside them.
    func quietHoursEnd(_ channel: Channel, at time: Timestamp, _ state: CustomerState) -> Timestamp? {
        var resume: Timestamp?
        for quiet in program.quietHours where quiet.channels.contains(channel) {
            let zone: String
            switch quiet.zone {
            case .fixed(let name): zone = name
            case .trait(let path, let fallback):
                zone = state.trait(path)?.string.flatMap { LocalTime.isKnownZone($0) ? $0 : nil } ?? fallback
            }
            let minute = LocalTime.minuteOfDay(at: time, zone: zone)
            let inside = quiet.from <= quiet.to ? (minute >= quiet.from && minute < quiet.to) : (minute >= quiet.from || minute < quiet.to)
            if inside {
                let end = LocalTime.next(minuteOfDay: quiet.to, atOrAfter: time, zone: zone)
                resume = max(resume ?? end, end)
            }
        }
        return resume
    }

    func capReached(_ channel: Channel, at time: Timestamp, _ state: CustomerState) -> String? {
        for cap in program.caps where cap.channels.contains(channel) {
            let recent = state.block.records(.sent).count { sent in
                cap.channels.contains(Channel.allCases[Int(sent.second)]) && sent.first > (time - cap.span).rawValue && sent.first <= time.rawValue
            }
            if recent >= cap.maximum { return cap.name }
        }
        return nil
    }

    mutating func recordSent(_ channel: Channel, at time: Timestamp, state: inout CustomerState) {
        state.block.append(StateBlock.Cell(first: time.rawValue, second: Int64(channel.place)), to: .sent)
        let horizon = (time - engine.longestCap).rawValue
        state.block.removeAll(from: .sent) { $0.first <= horizon }
    }

    /// Adds an output of `kind` for `workflow`, made in the list and filled in there, `details`
    /// last. An output made apart and then appended was copied whole on the way (every string of
    /// it retained, then released), even when passed as `consuming`.
    mutating func emit(
        _ kind: Output.Kind, _ state: CustomerState, _ workflow: Workflow, step: String?, variant: String?, at time: Timestamp, id: DecisionKey,
        _ details: (inout Output) -> Void
    ) {
        var hasher = StableHasher()
        hasher.combine(state.customerID)
        hasher.combine(workflow.id)
        hasher.combine(decimal: Int64(workflow.version))
        hasher.combine(kind.rawValue)
        id.combine(into: &hasher)
        outputs.append(
            Output(kind: kind, decisionID: StableHash.hex(hasher.value), customerID: state.customerID, eventTime: time, decisionTime: max(decisionTime, time)))
        Self.fill(&outputs[outputs.count - 1], workflow, step: step, variant: variant, details)
    }

    private static func fill(_ output: inout Output, _ workflow: Workflow, step: String?, variant: String?, _ details: (inout Output) -> Void) {
        output.workflowID = workflow.id
        output.workflowVersion = workflow.version
        output.step = step
        output.variant = variant
        details(&output)
    }
}

/// What tells a decision apart from the customer's other decisions of its kind in the same
/// workflow version. Its parts are hashed into the decision id one by one, as their texts would be,
/// so that ids stay what they were when these parts were a list of strings.
enum DecisionKey {
    /// A step of the run that entry `entry` started.
    case step(entry: Int, label: String)
    /// An entry held back by suppressions at `time`.
    case suppressedEntry(at: Timestamp)
    /// An entry held back at `time` because a guardrail paused the arm.
    case pausedEntry(at: Timestamp)
    case holdout(entry: Int)
    case exit(entry: Int)
    /// Conversion or guardrail `name`, attributed to entry `entry`.
    case outcome(Output.Kind, entry: Int, name: String)

    func combine(into hasher: inout StableHasher) {
        switch self {
        case .step(let entry, let label):
            hasher.combine("step")
            hasher.combine(decimal: Int64(entry))
            hasher.combine(label)
        case .suppressedEntry(let time):
            hasher.combine("entry")
            hasher.combine(decimal: time.rawValue)
        case .pausedEntry(let time):
            hasher.combine("paused")
            hasher.combine(decimal: time.rawValue)
        case .holdout(let entry):
            hasher.combine("holdout")
            hasher.combine(decimal: Int64(entry))
        case .exit(let entry):
            hasher.combine("exit")
            hasher.combine(decimal: Int64(entry))
        case .outcome(let kind, let entry, let name):
            hasher.combine(kind.rawValue)
            hasher.combine(decimal: Int64(entry))
            hasher.combine(name)
        }
    }
}

/// The metrics, suppressions and workflows one event name updates. A class: an event's lookup
/// hands out one reference, not a copy of each list.
final class EventRoutes: Sendable {
    let metrics: [Int]
    let suppressionStarts: [Int]
    let suppressionEnds: [Int]
    let afterEventWorkflows: [Int]
    /// Conversions, as (workflow, conversion) pairs, and guardrails this event may be.
    let conversions: [(workflow: Int, conversion: Int)]
    let guardrails: [Int]
    /// Whether a guardrail must follow this event (`after:`), so its time is kept.
    let isPrecedent: Bool
    /// True for `Subscribed` and false for `Unsubscribed`, whose `channel` property opts the
    /// customer in or out; nil for any other event, whose properties are not searched for one.
    let subscribes: Bool?

    private init(_ lists: Lists) {
        metrics = lists.metrics
        suppressionStarts = lists.suppressionStarts
        suppressionEnds = lists.suppressionEnds
        afterEventWorkflows = lists.afterEventWorkflows
        conversions = lists.conversions
        guardrails = lists.guardrails
        isPrecedent = lists.isPrecedent
        subscribes = lists.subscribes
    }

    /// The routes of one event name while the index is built.
    private struct Lists {
        var metrics: [Int] = []
        var suppressionStarts: [Int] = []
        var suppressionEnds: [Int] = []
        var afterEventWorkflows: [Int] = []
        var conversions: [(workflow: Int, conversion: Int)] = []
        var guardrails: [Int] = []
        var isPrecedent = false
        var subscribes: Bool?
    }

    static func index(_ program: Program) -> Index {
        var routes: [String: Lists] = [:]
        routes["Subscribed", default: Lists()].subscribes = true
        routes["Unsubscribed", default: Lists()].subscribes = false
        for (index, metric) in program.metrics.enumerated() { routes[metric.event, default: Lists()].metrics.append(index) }
        for (index, suppression) in program.suppressions.enumerated() {
            switch suppression.rule {
            case .between(let start, let end):
                routes[start, default: Lists()].suppressionStarts.append(index)
                routes[end, default: Lists()].suppressionEnds.append(index)
            case .within(_, let event):
                routes[event, default: Lists()].suppressionStarts.append(index)
            case .trait:
                break
            }
        }
        for (index, workflow) in program.workflows.enumerated() {
            if case .afterEvent(let name, _) = workflow.trigger { routes[name, default: Lists()].afterEventWorkflows.append(index) }
            for (position, conversion) in workflow.conversions.enumerated() {
                routes[conversion.event, default: Lists()].conversions.append((index, position))
            }
        }
        for (index, guardrail) in program.guardrails.enumerated() {
            routes[guardrail.event, default: Lists()].guardrails.append(index)
            if let after = guardrail.after { routes[after, default: Lists()].isPrecedent = true }
        }
        return Index(routes.mapValues(EventRoutes.init))
    }

    /// The routes by event name, grouped by the name's length in bytes: a lookup compares the
    /// few names of that length, which costs less than hashing the name (it runs for every event).
    struct Index: Sendable {
        private var byLength: [[(name: String, routes: EventRoutes)]] = []

        init(_ routes: [String: EventRoutes]) {
            for (name, routes) in routes {
                let length = name.utf8.count
                if byLength.count <= length { byLength += Array(repeating: [], count: length + 1 - byLength.count) }
                byLength[length].append((name, routes))
            }
        }

        subscript(name: String) -> EventRoutes? {
            let length = name.utf8.count
            guard length < byLength.count else { return nil }
            for index in byLength[length].indices where byLength[length][index].name == name { return byLength[length][index].routes }
            return nil
        }
    }
}
