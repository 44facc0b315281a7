/// The small records of a customer's state, in one block of memory: the recent message ids, the
/// messages sent, each suppression's times, each workflow's memory and each metric's buckets or
/// distinct values.
///
/// Every such record is two 64-bit words (a ``Cell``). Kept in an array each, they took six
/// blocks per customer, each with a 32-byte header, the allocator's own and room to grow: about
/// 640 bytes for the generator's customers. Here they are runs of one array, one after another,
/// each part's length kept at the front; a part that grows moves the parts after it along, and
/// the array grows by one cell at a time, since a new record (a new bucket, a new message id) is
/// rare next to the events that only read or update one.
struct StateBlock: Sendable, Hashable {
    /// One record: a bucket (index, value), a distinct value (hash, bucket), a message id (hash,
    /// time), a message sent (time, channel) or a suppression (start, end); a workflow's memory
    /// takes four.
    struct Cell: Sendable, Hashable {
        var first: Int64
        var second: Int64
    }

    /// Which run of cells a record belongs to. Metric `i` is part `Part.metric(i)`.
    struct Part: Sendable, Hashable {
        let number: Int

        static let recentMessages = Part(number: 0)
        static let sent = Part(number: 1)
        static let suppressions = Part(number: 2)
        static let workflows = Part(number: 3)
        static func metric(_ index: Int) -> Part { Part(number: 4 + index) }
    }

    /// The first cells hold 32-bit counts: the number of parts, then where each part starts (and
    /// where the last ends), so that finding a part is two reads. A distinct count's part has the
    /// top bit of its start set.
    private var cells: [Cell]

    private static let distinctFlag: UInt32 = 1 << 31

    /// A block for `workflows` workflows that were never entered, `suppressions` suppressions
    /// without times, and the metrics in `distinct` (true for a distinct count), empty.
    init(suppressions: Int, workflows: Int, distinct: [Bool]) {
        let parts = Part.metric(0).number + distinct.count
        let header = (parts + 2 + 3) / 4
        cells = Array(repeating: Cell(first: 0, second: 0), count: header)
        cells.append(contentsOf: repeatElement(Cell(first: .min, second: .min), count: suppressions))
        let never = WorkflowMemory().cells
        for _ in 0..<workflows { cells.append(contentsOf: [never.0, never.1, never.2, never.3]) }
        cells.withUnsafeMutableBytes { bytes in
            bytes.storeBytes(of: UInt32(parts), as: UInt32.self)
            for part in 0...parts {
                var start = header
                if part > Part.suppressions.number { start += suppressions }
                if part > Part.workflows.number { start += workflows * WorkflowMemory.cellCount }
                let metric = part - Part.metric(0).number
                let flag = metric >= 0 && metric < distinct.count && distinct[metric] ? Self.distinctFlag : 0
                bytes.storeBytes(of: UInt32(start) | flag, toByteOffset: (1 + part) * 4, as: UInt32.self)
            }
        }
    }

    /// How many metrics the block has parts for.
    var metricCount: Int { cells.withUnsafeBytes { Int($0.load(as: UInt32.self)) } - Part.metric(0).number }

    /// How many workflows the block has memories for.
    var workflowCount: Int { range(.workflows).count / WorkflowMemory.cellCount }

    /// Workflow `index`'s memory, as ``WorkflowMemory/cells``.
    func workflowCells(_ index: Int) -> WorkflowMemory.Cells {
        cells.withUnsafeBufferPointer { cells in
            let start = range(.workflows).lowerBound + index * WorkflowMemory.cellCount
            return (cells[start], cells[start + 1], cells[start + 2], cells[start + 3])
        }
    }

    mutating func setWorkflowCells(_ index: Int, _ memory: WorkflowMemory.Cells) {
        let start = range(.workflows).lowerBound + index * WorkflowMemory.cellCount
        cells.withUnsafeMutableBufferPointer { cells in
            (cells[start], cells[start + 1], cells[start + 2], cells[start + 3]) = memory
        }
    }

    /// Whether the word at `position`'s first half is a workflow's memo of its trigger's limit:
    /// no part of the state's value, so not compared or hashed.
    private func isMemo(_ position: Int, in workflows: Range<Int>) -> Bool {
        workflows.contains(position) && (position - workflows.lowerBound) % WorkflowMemory.cellCount == WorkflowMemory.cellCount - 1
    }

    /// Forgets each workflow's memo of its trigger's limit: the traits changed.
    mutating func forgetMemos() {
        let workflows = range(.workflows)
        let forgotten = Int64(bitPattern: DoubleMemo().bits)
        for position in stride(from: workflows.lowerBound + WorkflowMemory.cellCount - 1, to: workflows.upperBound, by: WorkflowMemory.cellCount)
        where cells[position].first != forgotten {
            cells[position].first = forgotten
        }
    }

    static func == (lhs: Self, rhs: Self) -> Bool {
        guard lhs.cells.count == rhs.cells.count else { return false }
        let workflows = lhs.range(.workflows)
        for position in lhs.cells.indices {
            let (left, right) = (lhs.cells[position], rhs.cells[position])
            guard left.second == right.second, left.first == right.first || lhs.isMemo(position, in: workflows) else { return false }
        }
        return true
    }

    func hash(into hasher: inout Hasher) {
        let workflows = range(.workflows)
        for position in cells.indices {
            if !isMemo(position, in: workflows) { hasher.combine(cells[position].first) }
            hasher.combine(cells[position].second)
        }
    }

    /// Whether the part holds a distinct count's values rather than buckets.
    func isDistinct(_ part: Part) -> Bool {
        cells.withUnsafeBytes { $0.load(fromByteOffset: (1 + part.number) * 4, as: UInt32.self) & Self.distinctFlag != 0 }
    }

    /// The positions in ``cells`` of a part's records, in order.
    func range(_ part: Part) -> Range<Int> {
        cells.withUnsafeBytes { bytes in
            let start = bytes.load(fromByteOffset: (1 + part.number) * 4, as: UInt32.self) & ~Self.distinctFlag
            let end = bytes.load(fromByteOffset: (2 + part.number) * 4, as: UInt32.self) & ~Self.distinctFlag
            return Range(uncheckedBounds: (Int(start), Int(end)))
        }
    }

    /// Moves the starts of the parts after `part` (and the end) by `change`.
    private static func shiftStarts(after part: Part, by change: Int, in cells: UnsafeMutableBufferPointer<Cell>) {
        let counts = UnsafeMutableRawPointer(cells.baseAddress!)
        let parts = Int(counts.load(as: UInt32.self))
        // Wrapping: a start's flag bit is kept, and no start goes below the header.
        let change = UInt32(truncatingIfNeeded: change)
        var offset = (2 + part.number) * 4
        while offset <= (1 + parts) * 4 {
            counts.storeBytes(of: counts.load(fromByteOffset: offset, as: UInt32.self) &+ change, toByteOffset: offset, as: UInt32.self)
            offset += 4
        }
    }

    subscript(position: Int) -> Cell {
        get { cells[position] }
        set { cells[position] = newValue }
    }

    /// The first and last words, summed: what ``StreamEngine`` reads of a customer's block before
    /// handling their events, to have its ends in the cache.
    var ends: Int64 { cells[0].first &+ cells[cells.count - 1].second }

    /// A part's records, as an array of their own.
    func records(_ part: Part) -> ArraySlice<Cell> { cells[range(part)] }

    /// Puts `cell` at `position`, which is in the part's range or just past it.
    mutating func insert(_ cell: Cell, at position: Int, into part: Part) {
        if cells.count == cells.capacity { cells.reserveCapacity(cells.count + 1) }
        cells.append(cell)
        cells.withUnsafeMutableBufferPointer { cells in
            let last = cells.count - 1
            if position < last {
                (cells.baseAddress! + position + 1).update(from: cells.baseAddress! + position, count: last - position)
                cells[position] = cell
            }
            Self.shiftStarts(after: part, by: 1, in: cells)
        }
    }

    mutating func append(_ cell: Cell, to part: Part) {
        insert(cell, at: range(part).upperBound, into: part)
    }

    /// Removes the records at `positions`, all in `part`.
    mutating func remove(_ positions: Range<Int>, from part: Part) {
        guard !positions.isEmpty else { return }
        cells.withUnsafeMutableBufferPointer { cells in
            let after = cells.count - positions.upperBound
            (cells.baseAddress! + positions.lowerBound).update(from: cells.baseAddress! + positions.upperBound, count: after)
            Self.shiftStarts(after: part, by: -positions.count, in: cells)
        }
        cells.removeLast(positions.count)
    }

    /// Removes the part's records for which `isRemoved` holds, keeping the others in order, and
    /// appends `cell` if one is given: in the place of a removed record when there is one, so
    /// that a part whose oldest record gives way to a new one moves nothing else.
    mutating func removeAll(from part: Part, where isRemoved: (Cell) -> Bool, thenAppend cell: Cell? = nil) {
        let range = range(part)
        let kept = cells.withUnsafeMutableBufferPointer { cells in
            var kept = range.lowerBound
            for position in range where !isRemoved(cells[position]) {
                cells[kept] = cells[position]
                kept += 1
            }
            return kept
        }
        guard let cell else { return remove(kept..<range.upperBound, from: part) }
        if kept < range.upperBound {
            cells[kept] = cell
            remove(kept + 1..<range.upperBound, from: part)
        } else {
            insert(cell, at: kept, into: part)
        }
    }

    /// Replaces a part's records.
    mutating func replace(_ part: Part, with records: some Collection<Cell>) {
        let range = range(part)
        cells.replaceSubrange(range, with: records)
        cells.withUnsafeMutableBufferPointer { Self.shiftStarts(after: part, by: records.count - range.count, in: $0) }
    }
}

// MARK: Metrics

extension StateBlock {
    /// Folds one occurrence at event time `time` into metric `index`; `latest` is the customer's
    /// latest event time, which decides what has left the window. `anchor` is the billing anchor,
    /// when the window needs one.
    ///
    /// A metric's records are its buckets that received something, in ascending order (a cell's
    /// index and value), at most a window's worth of them; for a distinct count, per value seen,
    /// its hash and the last bucket it was seen in, at most ``MetricState/maximumDistinct``.
    mutating func add(
        to index: Int, _ metric: DecisionEngine.Metric, properties: JSONObject, at time: Timestamp, latest: Timestamp, anchor: Timestamp?
    ) {
        guard let bucket = metric.bucketIndex(time, anchor: anchor), let newest = metric.bucketIndex(latest, anchor: anchor) else { return }
        let span = metric.bucketsPerWindow
        guard bucket > newest - span else { return }
        let part = Part.metric(index)
        switch metric.definition.aggregate {
        case .count:
            fold(bucket, 1, +, into: part)
        case .sum(let property):
            guard let amount = properties.value(at: property)?.number else { return }
            fold(bucket, amount, +, into: part)
        case .max(let property):
            guard let amount = properties.value(at: property)?.number else { return }
            fold(bucket, amount, Swift.max, into: part)
        case .distinct(let property):
            guard let value = properties.value(at: property) else { return }
            let hash = Int64(bitPattern: MetricState.distinctHash(value))
            let range = range(part)
            if let position = range.first(where: { self[$0].first == hash }) {
                self[position].second = Swift.max(self[position].second, bucket)
            } else {
                append(Cell(first: hash, second: bucket), to: part)
                if range.count + 1 > MetricState.maximumDistinct,
                    let oldest = self.range(part).min(by: { self[$0].second < self[$1].second })
                {
                    remove(oldest..<oldest + 1, from: part)
                }
            }
        }
        prune(part, before: newest - span + 1, distinct: metric.countsDistinct)
    }

    /// Metric `index`'s value at `time`: over the buckets still inside the window then.
    func value(of index: Int, _ metric: DecisionEngine.Metric, at time: Timestamp, anchor: Timestamp?) -> Double {
        guard let current = metric.bucketIndex(time, anchor: anchor) else { return 0 }
        let oldest = current - metric.bucketsPerWindow + 1
        let range = range(.metric(index))
        if metric.countsDistinct {
            return Double(range.count { self[$0].second >= oldest && self[$0].second <= current })
        }
        if metric.keepsMaximum {
            var maximum: Double?
            for position in range where self[position].first >= oldest && self[position].first <= current {
                let value = bucketValue(position)
                if maximum.map({ $0 < value }) ?? true { maximum = value }
            }
            return maximum ?? 0
        }
        // In bucket order, as the sum has always been taken: the same additions give the same bits.
        var total = 0.0
        for position in range where self[position].first >= oldest && self[position].first <= current {
            total += bucketValue(position)
        }
        return total
    }

    private func bucketValue(_ position: Int) -> Double { Double(bitPattern: UInt64(bitPattern: self[position].second)) }

    private mutating func setBucketValue(_ position: Int, _ value: Double) { self[position].second = Int64(bitPattern: value.bitPattern) }

    /// Adds to bucket `bucket`, made if it is new.
    private mutating func fold(_ bucket: Int64, _ amount: Double, _ combine: (Double, Double) -> Double, into part: Part) {
        let range = range(part)
        if let last = range.last, self[last].first == bucket {
            setBucketValue(last, combine(bucketValue(last), amount))
            return
        }
        let position = range.first { self[$0].first >= bucket } ?? range.upperBound
        if position < range.upperBound, self[position].first == bucket {
            setBucketValue(position, combine(bucketValue(position), amount))
        } else {
            insert(Cell(first: bucket, second: Int64(bitPattern: amount.bitPattern)), at: position, into: part)
        }
    }

    /// Drops the buckets (or distinct values last seen in buckets) before `oldest`.
    private mutating func prune(_ part: Part, before oldest: Int64, distinct: Bool) {
        let range = range(part)
        if distinct {
            if range.contains(where: { self[$0].second < oldest }) { removeAll(from: part) { $0.second < oldest } }
        } else if let first = range.first, self[first].first < oldest {
            let end = range.first { self[$0].first >= oldest } ?? range.upperBound
            remove(first..<end, from: part)
        }
    }
}
