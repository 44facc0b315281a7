/// The small records of a customer's state, in one block of memory: the recent message ids, the
/// messages sent, the suppressions' times, the workflows' memories and each metric's buckets or
/// distinct values.
///
/// Every such record is one or more pairs of 64-bit words (a ``Cell``). Kept in an array each,
/// they took seven blocks per customer, each with a 32-byte header, the allocator's own and room
/// to grow. Here they are runs of one array, one after another, with where each starts kept at
/// the front; a part that grows moves the parts after it along. The array grows by what is
/// added and an eighth to spare, at least three cells: room for each new record alone cost 3%
/// more instructions in reallocations, for 25 bytes less per customer, and a young customer's
/// small block, grown by an eighth, took a new allocation every record or two.
///
/// Suppressions and workflows are kept sparse, by index, in index order: most customers have
/// never had a ticket or a failed payment, and half the workflow memories are as they were
/// made. A memory or a time that goes back to nothing is removed, so that equal states hold the
/// same cells.
struct StateBlock: Sendable, Hashable {
    /// Two words: a bucket (index, value), a distinct value (hash, bucket), a message id (hash,
    /// time), a message sent (time, channel), a suppression's start or end (index × 2, plus 1 for
    /// an end; time) or a trigger's limit (workflow index, value); a workflow's memory takes
    /// ``WorkflowMemory/cellCount``, its index in the last one's first word.
    struct Cell: Sendable, Hashable {
        var first: Int64
        var second: Int64
    }

    /// Which run of cells a record belongs to. Metric `i` is part `Part.metric(i)`; the recent
    /// message ids come last, after the metrics, and the block tells their part
    /// (``recentMessages``).
    ///
    /// A record put into a part moves every part after it along. The traits, which only an
    /// `identify` changes and few events read, come first, so that they never move: moving them
    /// read and wrote memory that nothing else of the event needed in the cache. A message id
    /// goes in for every event, at the block's end, and moves nothing.
    struct Part: Sendable, Hashable {
        let number: Int

        /// The traits' packed text: its length, then its bytes.
        static let traits = Part(number: 0)
        static let sent = Part(number: 1)
        static let suppressions = Part(number: 2)
        static let workflows = Part(number: 3)
        /// Each ratio trigger's limit as last read from the traits: a memo, no part of the value.
        static let limits = Part(number: 4)
        static func metric(_ index: Int) -> Part { Part(number: 5 + index) }
    }

    /// The first cells hold 32-bit counts: the number of parts, of suppressions and of workflows,
    /// then where each part starts (and where the last ends), so that finding a part is two reads.
    /// A distinct count's part has the top bit of its start set.
    private var cells: [Cell]

    private static let distinctFlag: UInt32 = 1 << 31
    private static let startsAt = 3

    /// A block for `suppressions` suppressions and `workflows` workflows, and for the metrics in
    /// `distinct` (true for a distinct count): without records.
    init(suppressions: Int, workflows: Int, distinct: [Bool]) {
        let parts = Part.metric(0).number + distinct.count + 1
        let header = (Self.startsAt + parts + 1 + 3) / 4
        cells = Array(repeating: Cell(first: 0, second: 0), count: header)
        cells.withUnsafeMutableBytes { bytes in
            for (position, count) in [parts, suppressions, workflows].enumerated() {
                bytes.storeBytes(of: UInt32(count), toByteOffset: position * 4, as: UInt32.self)
            }
            for part in 0...parts {
                let metric = part - Part.metric(0).number
                let flag = metric >= 0 && metric < distinct.count && distinct[metric] ? Self.distinctFlag : 0
                bytes.storeBytes(of: UInt32(header) | flag, toByteOffset: (Self.startsAt + part) * 4, as: UInt32.self)
            }
        }
    }

    private func count(at position: Int) -> Int { cells.withUnsafeBytes { Int($0.load(fromByteOffset: position * 4, as: UInt32.self)) } }

    /// How many metrics, suppressions and workflows the block is for.
    var metricCount: Int { count(at: 0) - Part.metric(0).number - 1 }

    /// The recent message ids' part: the last.
    var recentMessages: Part { cells.withUnsafeBufferPointer(Self.recentMessages) }

    private static func recentMessages(in cells: UnsafeBufferPointer<Cell>) -> Part {
        Part(number: Int(UnsafeRawPointer(cells.baseAddress!).load(as: UInt32.self)) - 1)
    }
    var suppressionCount: Int { count(at: 1) }
    var workflowCount: Int { count(at: 2) }

    /// Whether the part holds a distinct count's values rather than buckets.
    func isDistinct(_ part: Part) -> Bool {
        cells.withUnsafeBytes { $0.load(fromByteOffset: (Self.startsAt + part.number) * 4, as: UInt32.self) & Self.distinctFlag != 0 }
    }

    /// The positions in ``cells`` of a part's records, in order.
    func range(_ part: Part) -> Range<Int> {
        cells.withUnsafeBufferPointer { Self.range(part, in: $0) }
    }

    private static func range(_ part: Part, in cells: UnsafeBufferPointer<Cell>) -> Range<Int> {
        let counts = UnsafeRawPointer(cells.baseAddress!)
        let start = counts.load(fromByteOffset: (startsAt + part.number) * 4, as: UInt32.self) & ~distinctFlag
        let end = counts.load(fromByteOffset: (startsAt + 1 + part.number) * 4, as: UInt32.self) & ~distinctFlag
        return Range(uncheckedBounds: (Int(start), Int(end)))
    }

    /// Moves the starts of the parts after `part` (and the end) by `change`.
    private static func shiftStarts(after part: Part, by change: Int, in cells: UnsafeMutableBufferPointer<Cell>) {
        let counts = UnsafeMutableRawPointer(cells.baseAddress!)
        let parts = Int(counts.load(as: UInt32.self))
        // Wrapping: a start's flag bit is kept, and no start goes below the header.
        let change = UInt32(truncatingIfNeeded: change)
        var offset = (Self.startsAt + 1 + part.number) * 4
        while offset <= (Self.startsAt + parts) * 4 {
            counts.storeBytes(of: counts.load(fromByteOffset: offset, as: UInt32.self) &+ change, toByteOffset: offset, as: UInt32.self)
            offset += 4
        }
    }

    subscript(position: Int) -> Cell {
        get { cells[position] }
        set { cells[position] = newValue }
    }

    /// A word of the header and of each cache line of the parts that events use (all but the
    /// traits), summed: what ``StreamEngine`` reads of a customer's block before handling their
    /// events, to have them in the cache. The reads are independent of one another, so their
    /// misses overlap.
    var hotLines: Int64 {
        cells.withUnsafeBufferPointer { cells in
            let traits = Self.range(.traits, in: cells)
            var sum: Int64 = 0
            for position in stride(from: 0, to: traits.lowerBound, by: 4) { sum &+= cells[position].second }
            for position in stride(from: traits.upperBound, to: cells.count, by: 4) { sum &+= cells[position].second }
            return sum
        }
    }

    /// A part's records, as an array of their own.
    func records(_ part: Part) -> ArraySlice<Cell> { cells[range(part)] }

    /// Puts `records` at `position`, which is in the part's range or just past it.
    mutating func insert(_ records: some Collection<Cell>, at position: Int, into part: Part) {
        let added = records.count
        makeRoom(for: added)
        cells.append(contentsOf: records)
        cells.withUnsafeMutableBufferPointer { cells in
            let moved = cells.count - added - position
            if moved > 0 {
                (cells.baseAddress! + position + added).update(from: cells.baseAddress! + position, count: moved)
                _ = UnsafeMutableBufferPointer(rebasing: cells[position..<position + added]).update(fromContentsOf: records)
            }
            Self.shiftStarts(after: part, by: added, in: cells)
        }
    }

    /// As inserting a collection of one, without the collection: one record goes in for each
    /// event that opens a metric bucket, and the general path cost that half as much again.
    mutating func insert(_ cell: Cell, at position: Int, into part: Part) {
        makeRoom(for: 1)
        cells.append(cell)
        cells.withUnsafeMutableBufferPointer { cells in
            let moved = cells.count - 1 - position
            if moved > 0 {
                (cells.baseAddress! + position + 1).update(from: cells.baseAddress! + position, count: moved)
                cells[position] = cell
            }
            Self.shiftStarts(after: part, by: 1, in: cells)
        }
    }

    /// Room for `added` more cells, and when it must grow, an eighth of the block and at least
    /// three cells to spare.
    @inline(__always)
    private mutating func makeRoom(for added: Int) {
        if cells.count + added > cells.capacity { cells.reserveCapacity(cells.count + added + max(3, cells.count / 8)) }
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

    // MARK: Records by key

    /// Where the record keyed `key` is in a part kept in key order, whose records take `size`
    /// cells and have their key in the first word of their last cell; or where it would go.
    func find(_ key: Int64, in part: Part, size: Int = 1) -> (position: Int, found: Bool) {
        cells.withUnsafeBufferPointer { cells in
            let range = Self.range(part, in: cells)
            var position = range.lowerBound
            // The header keeps every part within the cells.
            let base = cells.baseAddress! + size - 1
            while position < range.upperBound {
                let recordKey = base[position].first
                if recordKey >= key { return (position, recordKey == key) }
                position += size
            }
            return (position, false)
        }
    }

    /// The second word of the one-cell record keyed `key`, if there is one.
    func value(keyed key: Int64, in part: Part) -> Int64? {
        let (position, found) = find(key, in: part)
        return found ? cells[position].second : nil
    }

    /// Sets the one-cell record keyed `key` to `value`, or removes it for nil.
    mutating func setValue(_ value: Int64?, keyed key: Int64, in part: Part) {
        let (position, found) = find(key, in: part)
        switch (found, value) {
        case (true, let value?): cells[position].second = value
        case (true, nil): remove(position..<position + 1, from: part)
        case (false, let value?): insert(Cell(first: key, second: value), at: position, into: part)
        case (false, nil): break
        }
    }

    /// Workflow `index`'s memory, as ``WorkflowMemory/cells(index:)``; nil for one as it was made.
    func workflowCells(_ index: Int) -> WorkflowMemory.Cells? {
        let (position, found) = find(Int64(index), in: .workflows, size: WorkflowMemory.cellCount)
        return found ? workflowCells(at: position) : nil
    }

    /// The memory at `position`, which ``find(_:in:size:)`` gave.
    func workflowCells(at position: Int) -> WorkflowMemory.Cells {
        cells.withUnsafeBufferPointer { cells in
            let record = cells.baseAddress! + position
            return (record[0], record[1], record[2], record[3])
        }
    }

    /// Calls `body` with each workflow's index and memory, but for memories as they were made.
    func forEachWorkflow(_ body: (Int, WorkflowMemory.Cells) -> Void) {
        cells.withUnsafeBufferPointer { cells in
            for position in stride(from: Self.range(.workflows, in: cells).lowerBound, to: Self.range(.workflows, in: cells).upperBound, by: WorkflowMemory.cellCount) {
                let record = cells.baseAddress! + position
                body(Int(record[3].first), (record[0], record[1], record[2], record[3]))
            }
        }
    }

    /// Keeps a workflow's memory where ``find(_:in:size:)`` gave `position` and `found` for its
    /// index; nil removes it (the memory as it was made).
    mutating func setWorkflowCells(at position: Int, found: Bool, _ memory: WorkflowMemory.Cells?) {
        let size = WorkflowMemory.cellCount
        switch (found, memory) {
        case (true, let memory?):
            cells.withUnsafeMutableBufferPointer { cells in
                (cells[position], cells[position + 1], cells[position + 2], cells[position + 3]) = memory
            }
        case (true, nil): remove(position..<position + size, from: .workflows)
        case (false, let memory?):
            insert(repeatElement(memory.0, count: size), at: position, into: .workflows)
            cells.withUnsafeMutableBufferPointer { cells in (cells[position + 1], cells[position + 2], cells[position + 3]) = (memory.1, memory.2, memory.3) }
        case (false, nil): break
        }
    }

    // MARK: Traits

    /// Calls `body` with the traits' packed text, in place.
    func withTraitText<Result>(_ body: (UnsafeBufferPointer<UInt8>) -> Result) -> Result {
        cells.withUnsafeBufferPointer { cells in
            let range = Self.range(.traits, in: cells)
            guard !range.isEmpty else { return body(UnsafeBufferPointer(start: nil, count: 0)) }
            let length = Int(cells[range.lowerBound].first)
            return body(UnsafeBufferPointer(start: UnsafeRawPointer(cells.baseAddress! + range.lowerBound + 1).assumingMemoryBound(to: UInt8.self), count: length))
        }
    }

    /// Keeps `text` as the traits' packed text, zero-padded to whole cells.
    mutating func setTraitText(_ text: some Collection<UInt8>) {
        guard !text.isEmpty else { return replace(.traits, with: EmptyCollection()) }
        let needed = 1 + (text.count + 15) / 16
        if range(.traits).count != needed { replace(.traits, with: repeatElement(Cell(first: 0, second: 0), count: needed)) }
        let start = range(.traits).lowerBound
        cells.withUnsafeMutableBufferPointer { cells in
            cells[start] = Cell(first: Int64(text.count), second: 0)
            // The last cell zeroed first: its bytes past the text are padding.
            cells[start + needed - 1] = Cell(first: 0, second: 0)
            let bytes = UnsafeMutableRawBufferPointer(start: cells.baseAddress! + start + 1, count: (needed - 1) * MemoryLayout<Cell>.stride)
            bytes.copyBytes(from: text)
        }
    }

    /// Forgets the trigger limits read from the traits: they changed.
    mutating func forgetLimits() {
        let limits = range(.limits)
        if !limits.isEmpty { remove(limits, from: .limits) }
    }

    /// The parts that are the block's value: all but the limits, a memo.
    private var valueParts: some Sequence<Part> {
        (0..<count(at: 0)).lazy.map(Part.init).filter { $0 != .limits }
    }

    static func == (lhs: Self, rhs: Self) -> Bool {
        (0..<startsAt).allSatisfy { lhs.count(at: $0) == rhs.count(at: $0) }
            && lhs.valueParts.allSatisfy { lhs.isDistinct($0) == rhs.isDistinct($0) && lhs.records($0) == rhs.records($0) }
    }

    func hash(into hasher: inout Hasher) {
        for part in valueParts {
            hasher.combine(isDistinct(part))
            hasher.combine(records(part))
        }
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
        to index: Int, _ metric: DecisionEngine.Metric, properties: PackedJSONObject, at time: Timestamp, latest: Timestamp, anchor: Timestamp?
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
