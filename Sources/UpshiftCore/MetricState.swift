/// One customer's running value of one metric: a bounded ring of buckets, never a list of events.
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

    var isEmpty: Bool { buckets.isEmpty && distinct.isEmpty }

    /// Folds in one occurrence at event time `time`; `latest` is the customer's latest event time,
    /// which decides what has left the window. `anchor` is the billing anchor, when the window needs one.
    mutating func add(_ metric: DecisionEngine.Metric, properties: JSONObject, at time: Timestamp, latest: Timestamp, anchor: Timestamp?) {
        guard let index = metric.bucketIndex(time, anchor: anchor), let newest = metric.bucketIndex(latest, anchor: anchor) else { return }
        let span = metric.bucketsPerWindow
        guard index > newest - span else { return }
        switch metric.definition.aggregate {
        case .count:
            fold(index, 1, +, span: span)
        case .sum(let property):
            guard let amount = properties.value(at: property)?.number else { return }
            fold(index, amount, +, span: span)
        case .max(let property):
            guard let amount = properties.value(at: property)?.number else { return }
            fold(index, amount, Swift.max, span: span)
        case .distinct(let property):
            guard let value = properties.value(at: property) else { return }
            let hash = Self.distinctHash(value)
            if let position = distinct.firstIndex(where: { $0.hash == hash }) {
                distinct[position].bucket = Swift.max(distinct[position].bucket, index)
            } else {
                distinct.append((hash, index))
                if distinct.count > Self.maximumDistinct,
                    let oldest = distinct.indices.min(by: { distinct[$0].bucket < distinct[$1].bucket })
                {
                    distinct.remove(at: oldest)
                }
            }
        }
        prune(before: newest - span + 1)
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

    /// The metric's value at `time`: over the buckets still inside the window then.
    func value(_ metric: DecisionEngine.Metric, at time: Timestamp, anchor: Timestamp?) -> Double {
        guard let current = metric.bucketIndex(time, anchor: anchor) else { return 0 }
        let oldest = current - metric.bucketsPerWindow + 1
        if metric.countsDistinct {
            return Double(distinct.count { $0.bucket >= oldest && $0.bucket <= current })
        }
        if metric.keepsMaximum {
            var maximum: Double?
            for position in buckets.indices where buckets[position].index >= oldest && buckets[position].index <= current {
                if maximum.map({ $0 < buckets[position].value }) ?? true { maximum = buckets[position].value }
            }
            return maximum ?? 0
        }
        // In bucket order, as the sum has always been taken: the same additions give the same bits.
        var total = 0.0
        for position in buckets.indices where buckets[position].index >= oldest && buckets[position].index <= current {
            total += buckets[position].value
        }
        return total
    }

    /// Adds to bucket `index`, made if it is new; a window holds at most `span` buckets.
    private mutating func fold(_ index: Int64, _ amount: Double, _ combine: (Double, Double) -> Double, span: Int64) {
        if let last = buckets.last, last.index == index {
            buckets[buckets.count - 1].value = combine(last.value, amount)
            return
        }
        if let position = buckets.firstIndex(where: { $0.index >= index }) {
            if buckets[position].index == index {
                buckets[position].value = combine(buckets[position].value, amount)
            } else {
                buckets.insert(Bucket(index: index, value: amount), at: position)
            }
        } else {
            // Room for several at once: grown one append at a time, a customer's first buckets
            // took a new block at the 1st, 2nd, 3rd and 5th.
            if buckets.isEmpty { buckets.reserveCapacity(Int(Swift.min(span, Self.firstCapacity))) }
            buckets.append(Bucket(index: index, value: amount))
        }
    }

    /// How many buckets a metric's first one makes room for.
    private static let firstCapacity: Int64 = 4

    private mutating func prune(before oldest: Int64) {
        if let first = buckets.first, first.index < oldest { buckets.removeAll { $0.index < oldest } }
        if distinct.contains(where: { $0.bucket < oldest }) { distinct.removeAll { $0.bucket < oldest } }
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
