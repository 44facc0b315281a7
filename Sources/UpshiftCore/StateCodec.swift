/// A compact binary form of ``CustomerState``, for a changelog record and for measuring what a
/// customer costs. Integers are variable-length, times are zig-zag varints, traits are JSON.
///
/// Metrics, suppressions and workflows are stored by position in the program that wrote the
/// state; decoding with that program's ``StateLayout`` moves each to its place in the current
/// program by name, so that workflow files can change between a write and a read.
public enum StateCodec {
    /// Version 2 added each workflow's assignment and the guardrail precedents; version 3 keeps
    /// a workflow's last suppression reasons as their digest, and its assignment without the time
    /// and entry, which are those of the latest entry. Versions 1 and 2 still read.
    static let version: UInt8 = 3

    public static func encode(_ state: CustomerState) -> [UInt8] {
        var out = Writer()
        out.byte(version)
        out.string(state.customerID)
        state.block.withTraitText { out.json(text: $0) }
        out.optionalString(state.accountID)
        out.json(state.accountTraits)
        out.optionalTime(state.latestEventTime)
        // By index throughout: `for x in array` would copy (and retain) each element.
        // Read from the block in place: the state's arrays of them would be copies.
        let block = state.block
        out.count(block.metricCount)
        for metric in 0..<block.metricCount {
            let records = block.records(.metric(metric))
            // Buckets (index, value), then distinct values (hash, bucket): a metric has one or the other.
            if block.isDistinct(.metric(metric)) {
                out.count(0)
                out.count(records.count)
                for record in records {
                    out.fixed(UInt64(bitPattern: record.first))
                    out.signed(record.second)
                }
            } else {
                out.count(records.count)
                for record in records {
                    out.signed(record.first)
                    out.double(Double(bitPattern: UInt64(bitPattern: record.second)))
                }
                out.count(0)
            }
        }
        out.count(block.suppressionCount)
        for index in 0..<block.suppressionCount {
            let suppression = state.suppression(index)
            out.optionalTime(suppression.lastStart)
            out.optionalTime(suppression.lastEnd)
        }
        // A channel's bit is 1 << its position among all channels, as the format has it.
        out.byte(state.subscribedChannels)
        out.byte(state.unsubscribedChannels)
        let sent = block.records(.sent)
        out.count(sent.count)
        for message in sent {
            out.time(Timestamp(rawValue: message.first))
            out.byte(UInt8(message.second))
        }
        out.count(state.block.workflowCount)
        for index in 0..<state.block.workflowCount {
            let memory = state[workflow: index]
            out.count(memory.entries)
            out.optionalTime(memory.lastEntry)
            out.optionalTime(memory.conditionSince)
            out.byte(memory.sustainedChecked ? 1 : 0)
            out.optionalTime(memory.scheduled)
            out.optionalTime(memory.scheduledFrom)
            if memory.lastSuppression == .none {
                out.byte(0)
            } else {
                out.byte(1)
                out.fixed(memory.lastSuppression.value)
            }
            if let assignment = state.assignment(of: index) {
                out.byte(1)
                out.byte(assignment.holdout ? 1 : 0)
                out.optionalString(assignment.variant)
                out.fixed(assignment.attributed)
            } else {
                out.byte(0)
            }
        }
        if let run = state.run {
            out.byte(1)
            out.count(run.workflow)
            out.count(run.entry)
            out.time(run.enteredAt)
            out.optionalString(run.variant)
            out.count(run.position)
            switch run.waiting {
            case nil: out.byte(0)
            case .until(let time)?:
                out.byte(1)
                out.time(time)
            case .event(let name, let timeout, let position)?:
                out.byte(2)
                out.string(name)
                out.time(timeout)
                out.count(position)
            }
            out.json(run.evidence)
        } else {
            out.byte(0)
        }
        let recent = block.records(block.recentMessages)
        out.count(recent.count)
        for mark in recent {
            out.fixed(UInt64(bitPattern: mark.first))
            out.time(Timestamp(rawValue: mark.second))
        }
        out.count(state.lateEvents)
        out.count(state.aliases.count)
        state.aliases.forEach { out.string($0) }
        out.count(state.precedents.count)
        if state.precedents.count == 1, let (event, time) = state.precedents.first {
            out.string(event)
            out.time(time)
        } else {
            for (event, time) in state.precedents.sorted(by: { $0.key < $1.key }) {
                out.string(event)
                out.time(time)
            }
        }
        return out.bytes
    }

    /// - Parameter layout: the layout of the program that wrote the state, when it may differ from
    ///   `program`'s. A metric whose definition changed, and a declaration that is gone, start
    ///   fresh; a workflow keeps its entry history by id, and its in-flight run only if its version
    ///   is unchanged.
    /// - Throws: ``StateCodecError`` for bytes that are not a state this version wrote.
    public static func decode(_ bytes: [UInt8], program: Program, layout: StateLayout? = nil) throws(StateCodecError) -> CustomerState {
        let current = StateLayout(program)
        let written = layout ?? current
        var input = Reader(bytes: bytes)
        let format = try input.byte()
        guard (1...version).contains(format) else { throw StateCodecError(reason: "unknown state version \(format)") }
        var state = CustomerState(customerID: try input.string(), program: program)
        state.traits = PackedJSONObject(try input.json())
        state.accountID = try input.optionalString()
        state.accountTraits = PackedJSONObject(try input.json())
        state.latestEventTime = try input.optionalTime()
        let metrics = try (0..<input.count()).map { _ throws(StateCodecError) in
            let buckets = try (0..<input.count()).map { _ throws(StateCodecError) in
                MetricState.Bucket(index: try input.signed(), value: try input.double())
            }
            let distinct = try (0..<input.count()).map { _ throws(StateCodecError) in (hash: try input.fixed(), bucket: try input.signed()) }
            return MetricState(buckets: buckets, distinct: distinct)
        }
        state.metrics = remap(metrics, from: written.metrics, to: current.metrics, empty: MetricState())
        let suppressions = try (0..<input.count()).map { _ throws(StateCodecError) in
            SuppressionState(lastStart: try input.optionalTime(), lastEnd: try input.optionalTime())
        }
        state.suppressions = remap(suppressions, from: written.suppressions, to: current.suppressions, empty: SuppressionState())
        let channelBits = Channel.allCases.reduce(0) { $0 | $1.bit }
        state.subscribedChannels = try input.byte() & channelBits
        state.unsubscribedChannels = try input.byte() & channelBits
        let sent = try (0..<input.count()).map { _ throws(StateCodecError) in
            let time = try input.time()
            let index = Int(try input.byte())
            guard index < Channel.allCases.count else { throw StateCodecError(reason: "unknown channel \(index)") }
            return StateBlock.Cell(first: time.rawValue, second: Int64(index))
        }
        state.block.replace(.sent, with: sent)
        let workflows = try (0..<input.count()).map { _ throws(StateCodecError) in
            var memory = WorkflowMemory()
            var variant: String?
            let entries = try input.count()
            let lastEntry = try input.optionalTime()
            memory.conditionSince = try input.optionalTime()
            memory.sustainedChecked = try input.byte() == 1
            memory.scheduled = try input.optionalTime()
            memory.scheduledFrom = try input.optionalTime()
            if format >= 3 {
                memory.lastSuppression = try input.byte() == 1 ? ReasonsDigest(value: try input.fixed()) : .none
            } else {
                memory.lastSuppression = ReasonsDigest(try (0..<input.count()).map { _ throws(StateCodecError) in try input.string() })
            }
            var assignment: WorkflowMemory.Arm?
            if format >= 2, try input.byte() == 1 {
                // Version 2 also wrote the assignment's time and entry: those of the latest entry.
                if format == 2 { _ = try input.time() }
                let holdout = try input.byte() == 1
                variant = try input.optionalString()
                if format == 2 { _ = try input.count() }
                assignment = (holdout, variant != nil, try input.fixed())
            }
            memory.restore(entries: entries, lastEntry: lastEntry, assignment: assignment)
            return (memory: memory, variant: memory.hasVariant ? variant : nil)
        }
        let workflowIDs = (written: written.workflows.map(StateLayout.id), current: current.workflows.map(StateLayout.id))
        let memories = remap(workflows, from: workflowIDs.written, to: workflowIDs.current, empty: (memory: WorkflowMemory(), variant: nil))
        for (index, kept) in memories.enumerated() {
            state[workflow: index] = kept.memory
            state.setVariant(kept.variant, of: index)
        }
        if try input.byte() == 1 {
            let workflow = try input.count()
            let entry = try input.count()
            let enteredAt = try input.time()
            let variant = try input.optionalString()
            let position = try input.count()
            let waiting: Run.Waiting?
            switch try input.byte() {
            case 0: waiting = nil
            case 1: waiting = .until(try input.time())
            case 2: waiting = .event(name: try input.string(), timeout: try input.time(), timeoutPosition: try input.count())
            default: throw StateCodecError(reason: "unknown wait kind")
            }
            var run = Run(workflow: workflow, entry: entry, enteredAt: enteredAt, variant: variant, position: position, waiting: waiting, evidence: try input.json())
            if workflow < written.workflows.count, let index = current.workflows.firstIndex(of: written.workflows[workflow]) {
                run.workflow = index
                state.run = run
            }
        }
        let recent = try (0..<input.count()).map { _ throws(StateCodecError) in
            StateBlock.Cell(first: Int64(bitPattern: try input.fixed()), second: try input.time().rawValue)
        }
        state.block.replace(state.block.recentMessages, with: recent)
        state.lateEvents = try input.count()
        state.aliases = try (0..<input.count()).map { _ throws(StateCodecError) in try input.string() }
        if format >= 2 {
            for _ in 0..<(try input.count()) {
                let event = try input.string()
                state.precedents[event] = try input.time()
            }
        }
        guard input.atEnd else { throw StateCodecError(reason: "\(bytes.count - input.offset) bytes left over") }
        return state
    }

    /// Puts each value written under key `written[i]` where its key is in `current`.
    private static func remap<T>(_ values: [T], from written: [String], to current: [String], empty: T) -> [T] {
        if written == current, values.count == current.count { return values }
        var byKey: [String: T] = [:]
        for (key, value) in zip(written, values) { byKey[key] = value }
        return current.map { byKey[$0] ?? empty }
    }

    /// Each channel's bit in a mask and its code in a sent message: its place in `allCases`.
    private struct Writer {
        /// Most states encode to under 768 bytes: one allocation, not a doubling series, and
        /// small enough for the allocator's per-thread cache.
        var bytes: [UInt8] = []

        init() { bytes.reserveCapacity(768) }

        mutating func byte(_ value: UInt8) { bytes.append(value) }

        mutating func count(_ value: Int) { unsigned(UInt64(value)) }

        mutating func unsigned(_ value: UInt64) { Self.varint(value) { bytes.append($0) } }

        /// LEB128: seven bits a byte, low first, the high bit set on all but the last.
        static func varint(_ value: UInt64, _ emit: (UInt8) -> Void) {
            var value = value
            while value >= 0x80 {
                emit(UInt8(value & 0x7F) | 0x80)
                value >>= 7
            }
            emit(UInt8(value))
        }

        mutating func signed(_ value: Int64) { unsigned(UInt64(bitPattern: (value << 1) ^ (value >> 63))) }
        mutating func time(_ value: Timestamp) { signed(value.rawValue) }

        mutating func optionalTime(_ value: Timestamp?) {
            byte(value == nil ? 0 : 1)
            if let value { time(value) }
        }

        mutating func fixed(_ value: UInt64) { withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) } }
        mutating func double(_ value: Double) { fixed(value.bitPattern) }

        mutating func string(_ value: String) {
            count(value.utf8.count)
            bytes.append(contentsOf: value.utf8)
        }

        mutating func optionalString(_ value: String?) {
            byte(value == nil ? 0 : 1)
            if let value { string(value) }
        }

        /// A packed object's text after its length: the same bytes as the `JSONObject` form below writes.
        mutating func json(_ object: PackedJSONObject) {
            object.text.withUnsafeBufferPointer { json(text: $0) }
        }

        /// An object's packed text (see ``PackedJSONObject``) after its length.
        mutating func json(text: UnsafeBufferPointer<UInt8>) {
            count(text.count)
            bytes.append(contentsOf: text)
        }

        /// The JSON text after its length. It is written in place, and the length, known only then,
        /// slid in before it.
        mutating func json(_ object: JSONObject) {
            if object.isEmpty { return count(0) }
            let start = bytes.count
            var writer = JSONWriter(continuing: &bytes)
            writer.write(.object(object))
            bytes = writer.take()
            withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 10) { prefix in
                var size = 0
                Self.varint(UInt64(bytes.count - start)) {
                    prefix[size] = $0
                    size += 1
                }
                bytes.insert(contentsOf: prefix.prefix(size), at: start)
            }
        }
    }

    private struct Reader {
        let bytes: [UInt8]
        var offset = 0

        var atEnd: Bool { offset == bytes.count }

        mutating func byte() throws(StateCodecError) -> UInt8 {
            guard offset < bytes.count else { throw StateCodecError(reason: "truncated") }
            defer { offset += 1 }
            return bytes[offset]
        }

        mutating func unsigned() throws(StateCodecError) -> UInt64 {
            var value: UInt64 = 0
            var shift: UInt64 = 0
            while true {
                let next = try byte()
                guard shift < 64 else { throw StateCodecError(reason: "varint too long") }
                value |= UInt64(next & 0x7F) << shift
                if next < 0x80 { return value }
                shift += 7
            }
        }

        mutating func count() throws(StateCodecError) -> Int {
            let value = try unsigned()
            guard value <= UInt64(bytes.count) * 8 + 1_000_000 else { throw StateCodecError(reason: "implausible count \(value)") }
            return Int(value)
        }

        mutating func signed() throws(StateCodecError) -> Int64 {
            let value = try unsigned()
            return Int64(bitPattern: value >> 1) ^ -Int64(bitPattern: value & 1)
        }

        mutating func time() throws(StateCodecError) -> Timestamp { Timestamp(milliseconds: try signed()) }

        mutating func optionalTime() throws(StateCodecError) -> Timestamp? { try byte() == 1 ? try time() : nil }

        mutating func fixed() throws(StateCodecError) -> UInt64 {
            guard offset + 8 <= bytes.count else { throw StateCodecError(reason: "truncated") }
            var value: UInt64 = 0
            for index in (0..<8).reversed() { value = value << 8 | UInt64(bytes[offset + index]) }
            offset += 8
            return value
        }

        mutating func double() throws(StateCodecError) -> Double { Double(bitPattern: try fixed()) }

        mutating func string() throws(StateCodecError) -> String {
            let length = try count()
            guard offset + length <= bytes.count else { throw StateCodecError(reason: "truncated") }
            defer { offset += length }
            return String(decoding: bytes[offset..<offset + length], as: UTF8.self)
        }

        mutating func optionalString() throws(StateCodecError) -> String? { try byte() == 1 ? try string() : nil }

        mutating func json() throws(StateCodecError) -> JSONObject {
            let length = try count()
            if length == 0 { return JSONObject() }
            guard offset + length <= bytes.count else { throw StateCodecError(reason: "truncated") }
            defer { offset += length }
            let value = try bytes[offset..<offset + length].withUnsafeBufferPointer { buffer in
                Result { () throws(JSONSyntaxError) in try JSONReader.parse(buffer) }
            }.mapError { StateCodecError(reason: "bad JSON: \($0)") }.get()
            guard case .object(let object) = value else { throw StateCodecError(reason: "expected a JSON object") }
            return object
        }
    }
}

public struct StateCodecError: Error, Sendable, Hashable, CustomStringConvertible {
    public var reason: String
    public var description: String { "cannot decode customer state: \(reason)" }
}

/// What a state's positions refer to: the keys of a program's metrics and suppressions (name and
/// a hash of the definition) and workflows (id and version), in the program's order.
public struct StateLayout: Sendable, Hashable {
    public var metrics: [String]
    public var suppressions: [String]
    public var workflows: [String]

    public init(metrics: [String], suppressions: [String], workflows: [String]) {
        self.metrics = metrics
        self.suppressions = suppressions
        self.workflows = workflows
    }

    public init(_ program: Program) {
        metrics = program.metrics.map { "\($0.name)#\(StableHash.hex(StableHash.of(["\($0)"])))" }
        suppressions = program.suppressions.map { "\($0.name)#\(StableHash.hex(StableHash.of(["\($0)"])))" }
        workflows = program.workflows.map { "\($0.id)@\($0.version)" }
    }

    /// A workflow key without its version.
    static func id(_ key: String) -> String {
        String(key[..<(key.lastIndex(of: "@") ?? key.endIndex)])
    }
}
