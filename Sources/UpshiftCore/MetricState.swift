/// What a customer's state keeps of one metric, copied out of its ``StateBlock``: a bounded ring of
/// buckets, never a list of events.
///
/// Only buckets that received something are kept, in ascending order, and at most a window's
/// worth of them (`length / bucket`, capped at 1,024 by the loader). A distinct count keeps, per
/// value seen, a 64-bit hash and the last bucket it was seen in, at most ``maximumDistinct`` of them.
public struct MetricState: Sendable, Hashable {
    public struct Bucket: Sendable, Hashable {
        public var index: Int64
        public var value: Double
    }

    public private(set) var buckets: [Bucket] = []
    public private(set) var distinct: [(hash: UInt64, bucket: Int64)] = []

    /// Past this many values, a distinct count forgets the least recently seen (and undercounts).
    public static let maximumDistinct = 64

    public init() {}

    init(buckets: [Bucket], distinct: [(hash: UInt64, bucket: Int64)]) {
        self.buckets = buckets
        self.distinct = distinct
    }

    public static func == (lhs: Self, rhs: Self) -> Bool {
        lhs.buckets == rhs.buckets && lhs.distinct.elementsEqual(rhs.distinct) { $0.hash == $1.hash && $0.bucket == $1.bucket }
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(buckets)
        for entry in distinct {
            hasher.combine(entry.hash)
            hasher.combine(entry.bucket)
        }
    }

    /// The metric's value at `time`: over the buckets still inside the window then.
    func value(_ metric: DecisionEngine.Metric, at time: Timestamp, anchor: Timestamp?) -> Double {
        var block = StateBlock(suppressions: 0, workflows: 0, distinct: [metric.countsDistinct])
        block.replace(.metric(0), with: cells)
        return block.value(of: 0, metric, at: time, anchor: anchor)
    }

    /// The records a ``StateBlock`` keeps of it: its buckets, or for a distinct count its values.
    var cells: [StateBlock.Cell] {
        buckets.map { StateBlock.Cell(first: $0.index, second: Int64(bitPattern: $0.value.bitPattern)) }
            + distinct.map { StateBlock.Cell(first: Int64(bitPattern: $0.hash), second: $0.bucket) }
    }

    /// The state of a metric from a block's records of it.
    init(_ cells: ArraySlice<StateBlock.Cell>, countsDistinct: Bool) {
        if countsDistinct {
            distinct = cells.map { (hash: UInt64(bitPattern: $0.first), bucket: $0.second) }
        } else {
            buckets = cells.map { Bucket(index: $0.first, value: Double(bitPattern: UInt64(bitPattern: $0.second))) }
        }
    }

    /// The stable hash of a value's JSON text, which is what states keep of a distinct value. A
    /// string with nothing to escape (most are) is hashed as its text would be written, quotes
    /// and all, without writing it.
    static func distinctHash(_ value: JSONValue) -> UInt64 {
        if case .string(var text) = value {
            let plain: UInt64? = text.withUTF8 { utf8 in
                guard nextByteToEscape(in: utf8, from: 0) == utf8.count else { return nil }
                var hasher = StableHasher()
                hasher.combine(UInt8(ascii: "\""))
                for byte in utf8 { hasher.combine(byte) }
                hasher.combine(UInt8(ascii: "\""))
                return hasher.value
            }
            if let plain { return plain }
        }
        var writer = JSONWriter()
        writer.write(value)
        return StableHash.of(writer.bytes)
    }

    /// Which bucket an instant falls in; nil for a billing window without its anchor date.
    static func bucketIndex(_ window: MetricDefinition.Window, _ time: Timestamp, anchor: Timestamp?) -> Int64? {
        switch window {
        case .sliding(_, let bucket):
            return floorDivide(time.rawValue, bucket.milliseconds)
        case .calendar(.day):
            return floorDivide(time.rawValue, 86_400_000)
        case .calendar(.week):
            // ISO weeks start on Monday; 1970-01-01 was a Thursday.
            return floorDivide(floorDivide(time.rawValue, 86_400_000) + 3, 7)
        case .calendar(.month):
            let (year, month, _) = ISO8601.civil(fromDays: floorDivide(time.rawValue, 86_400_000))
            return year * 12 + month - 1
        case .billingPeriod:
            guard let anchor else { return nil }
            let anchorDay = ISO8601.civil(fromDays: floorDivide(anchor.rawValue, 86_400_000)).day
            let (year, month, day) = ISO8601.civil(fromDays: floorDivide(time.rawValue, 86_400_000))
            let startsThisMonth = day >= min(anchorDay, ISO8601.daysIn(month: month, year: year))
            return year * 12 + month - 1 - (startsThisMonth ? 0 : 1)
        }
    }

    static func bucketsPerWindow(_ window: MetricDefinition.Window) -> Int64 {
        if case .sliding(let length, let bucket) = window { return length.milliseconds / bucket.milliseconds }
        return 1
    }
}

/// FNV-1a, 64 bits: a hash that is the same in every process and on every machine, unlike
/// Swift's `Hasher`, for decision ids, holdout and variant assignment, and distinct values.
public enum StableHash {
    public static func of(_ bytes: some Sequence<UInt8>) -> UInt64 {
        var hasher = StableHasher()
        for byte in bytes { hasher.combine(byte) }
        return hasher.value
    }

    /// The hash of the parts joined by a unit separator, so that ("ab", "c") and ("a", "bc") differ.
    public static func of(_ parts: [String]) -> UInt64 {
        var hasher = StableHasher()
        for part in parts { hasher.combine(part) }
        return hasher.value
    }

    /// A uniform position in 0..<10,000 (hundredths of a percent), mixed so that nearby inputs spread.
    public static func bucket(_ parts: [String]) -> Int {
        var hasher = StableHasher()
        for part in parts { hasher.combine(part) }
        return bucket(hasher)
    }

    /// As ``bucket(_:)``, of the parts a hasher was given: no array of them is made.
    static func bucket(_ hasher: StableHasher) -> Int {
        var x = hasher.value
        x ^= x >> 33
        x &*= 0xff51_afd7_ed55_8ccd
        x ^= x >> 33
        return Int(x % 10_000)
    }

    /// Sixteen lowercase hex digits.
    public static func hex(_ value: UInt64) -> String {
        String(unsafeUninitializedCapacity: 16) { buffer in
            for position in 0..<16 {
                let digit = UInt8(truncatingIfNeeded: value >> UInt64(60 - 4 * position)) & 0xF
                buffer[position] = digit < 10 ? 48 + digit : 87 + digit
            }
            return 16
        }
    }
}

/// ``StableHash`` taken part by part, as `of(parts)` would join them, without making the joined text.
public struct StableHasher {
    public private(set) var value: UInt64 = 0xcbf2_9ce4_8422_2325
    private var parts = 0

    public init() {}

    mutating func combine(_ byte: UInt8) {
        value ^= UInt64(byte)
        value &*= 0x0000_0100_0000_01b3
    }

    /// Adds a part, after a unit separator if it is not the first.
    public mutating func combine(_ part: String) {
        if parts > 0 { combine(0x1F) }
        parts += 1
        var part = part
        part.withUTF8 { for byte in $0 { combine(byte) } }
    }

    /// Adds a number as the part its decimal text would be: the hash of `combine(String(value))`,
    /// without making the String.
    mutating func combine(decimal value: Int64) {
        if parts > 0 { combine(0x1F) }
        parts += 1
        if value < 0 { combine(UInt8(ascii: "-")) }
        let magnitude = value.magnitude
        var divisor: UInt64 = 1
        while magnitude / divisor >= 10 { divisor *= 10 }
        while divisor > 0 {
            combine(UInt8(ascii: "0") + UInt8(magnitude / divisor % 10))
            divisor /= 10
        }
    }
}
