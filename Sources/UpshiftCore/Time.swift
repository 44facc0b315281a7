/// An instant, in milliseconds since the Unix epoch (UTC). Event time and decision time both use it.
public struct Timestamp: RawRepresentable, Sendable, Hashable, Comparable, Codable, CustomStringConvertible {
    public var rawValue: Int64
    public init(rawValue: Int64) { self.rawValue = rawValue }
    public init(milliseconds: Int64) { self.rawValue = milliseconds }

    public static func < (lhs: Self, rhs: Self) -> Bool { lhs.rawValue < rhs.rawValue }
    public static func + (lhs: Self, rhs: TimeSpan) -> Self { Self(milliseconds: lhs.rawValue + rhs.milliseconds) }
    public static func - (lhs: Self, rhs: TimeSpan) -> Self { Self(milliseconds: lhs.rawValue - rhs.milliseconds) }
    public static func - (lhs: Self, rhs: Self) -> TimeSpan { TimeSpan(milliseconds: lhs.rawValue - rhs.rawValue) }

    /// ISO-8601 in UTC with milliseconds, for example `2026-03-01T08:00:00.000Z`.
    public var description: String { ISO8601.format(self) }

    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        guard let parsed = ISO8601.parse(text) else {
            throw DecodingError.dataCorrupted(
                .init(codingPath: decoder.codingPath, debugDescription: "not an ISO-8601 date-time: \(text)"))
        }
        self = parsed
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }
}

/// An optional time in eight bytes, for the times a customer's state keeps: `Timestamp?` takes
/// nine, which padding makes sixteen in a struct. `Int64.min` (before year -292,000,000) stands for none.
@propertyWrapper
public struct PackedTime: Sendable, Hashable {
    /// The packed form itself, for a record that keeps it as it is.
    var milliseconds: Int64

    public init(wrappedValue: Timestamp?) { milliseconds = wrappedValue?.rawValue ?? .min }

    public var wrappedValue: Timestamp? {
        get { milliseconds == .min ? nil : Timestamp(rawValue: milliseconds) }
        set { milliseconds = newValue?.rawValue ?? .min }
    }
}

/// A length of time, written in workflow files as a number and a unit: `90s`, `15m`, `12h`, `30d`, `2w`.
public struct TimeSpan: Sendable, Hashable, Comparable, CustomStringConvertible {
    public var milliseconds: Int64
    public init(milliseconds: Int64) { self.milliseconds = milliseconds }

    public static func seconds(_ n: Int64) -> Self { Self(milliseconds: n * 1000) }
    public static func minutes(_ n: Int64) -> Self { .seconds(n * 60) }
    public static func hours(_ n: Int64) -> Self { .minutes(n * 60) }
    public static func days(_ n: Int64) -> Self { .hours(n * 24) }
    public static let zero = Self(milliseconds: 0)

    public static func < (lhs: Self, rhs: Self) -> Bool { lhs.milliseconds < rhs.milliseconds }
    public static func * (lhs: Self, rhs: Int64) -> Self { Self(milliseconds: lhs.milliseconds * rhs) }

    /// Parses `<whole number><unit>` with unit `ms`, `s`, `m`, `h`, `d` or `w`; nil otherwise.
    public init?(parsing text: String) {
        let units: [(String, Int64)] = [("ms", 1), ("s", 1000), ("m", 60_000), ("h", 3_600_000), ("d", 86_400_000), ("w", 604_800_000)]
        for (unit, scale) in units where text.hasSuffix(unit) {
            let number = text.dropLast(unit.count)
            guard !number.isEmpty, number.allSatisfy(\.isASCII), let value = Int64(number), value >= 0 else { continue }
            self.init(milliseconds: value * scale)
            return
        }
        return nil
    }

    /// The shortest exact form: `30d`, `36h`, `90s`.
    public var description: String {
        let units: [(String, Int64)] = [("w", 604_800_000), ("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000)]
        for (unit, scale) in units where milliseconds != 0 && milliseconds % scale == 0 {
            return "\(milliseconds / scale)\(unit)"
        }
        return "\(milliseconds)ms"
    }
}

/// ISO-8601 date-times as CDPs send them, parsed from bytes: `Foundation`'s formatter manages
/// about 25,000 parses a second on Linux, far too slow for a per-event field.
public enum ISO8601 {
    /// Accepts `YYYY-MM-DD`, then `T` or a space and `hh:mm[:ss[.fraction]]`, then `Z`, `±hh:mm`,
    /// `±hhmm` or `±hh` (no zone means UTC). Fractions beyond milliseconds are truncated.
    public static func parse(_ text: String) -> Timestamp? {
        var text = text
        return text.withUTF8 { parse(bytes: $0) }
    }

    public static func parse(bytes: UnsafeBufferPointer<UInt8>) -> Timestamp? {
        if bytes.count == 24, let time = parseWritten(bytes) { return time }
        var reader = DigitReader(bytes: bytes)
        guard let year = reader.number(digits: 4), reader.skip(UInt8(ascii: "-")),
            let month = reader.number(digits: 2), reader.skip(UInt8(ascii: "-")),
            let day = reader.number(digits: 2),
            (1...12).contains(month), day >= 1, day <= daysIn(month: month, year: year)
        else { return nil }
        var millisecondOfDay: Int64 = 0
        if reader.skip(UInt8(ascii: "T")) || reader.skip(UInt8(ascii: "t")) || reader.skip(UInt8(ascii: " ")) {
            guard let hour = reader.number(digits: 2), reader.skip(UInt8(ascii: ":")),
                let minute = reader.number(digits: 2), hour < 24, minute < 60
            else { return nil }
            var second: Int64 = 0
            var millisecond: Int64 = 0
            if reader.skip(UInt8(ascii: ":")) {
                guard let s = reader.number(digits: 2), s < 61 else { return nil }
                second = min(s, 59)
                if reader.skip(UInt8(ascii: ".")) || reader.skip(UInt8(ascii: ",")) {
                    guard let fraction = reader.fractionMilliseconds() else { return nil }
                    millisecond = fraction
                }
            }
            millisecondOfDay = ((hour * 60 + minute) * 60 + second) * 1000 + millisecond
            guard let offset = reader.zoneOffsetMinutes() else { return nil }
            millisecondOfDay -= offset * 60_000
        }
        guard reader.atEnd else { return nil }
        return Timestamp(milliseconds: daysFromCivil(year: year, month: month, day: day) * 86_400_000 + millisecondOfDay)
    }

    /// The form ``format(_:)`` writes and nearly every record carries, `2026-03-01T10:00:00.000Z`,
    /// read at its fixed places, for about three quarters of the general reader's instructions.
    /// Nil for anything else, which that reader then judges.
    private static func parseWritten(_ bytes: UnsafeBufferPointer<UInt8>) -> Timestamp? {
        guard bytes[4] == UInt8(ascii: "-"), bytes[7] == UInt8(ascii: "-"), bytes[10] == UInt8(ascii: "T"), bytes[13] == UInt8(ascii: ":"),
            bytes[16] == UInt8(ascii: ":"), bytes[19] == UInt8(ascii: "."), bytes[23] == UInt8(ascii: "Z")
        else { return nil }
        var valid = true
        func number(_ start: Int, _ count: Int) -> Int64 {
            var value: Int64 = 0
            for position in start..<start + count {
                let digit = bytes[position] &- UInt8(ascii: "0")
                valid = valid && digit < 10
                value = value &* 10 &+ Int64(digit)
            }
            return value
        }
        let (year, month, day) = (number(0, 4), number(5, 2), number(8, 2))
        let (hour, minute, second, millisecond) = (number(11, 2), number(14, 2), number(17, 2), number(20, 3))
        guard valid, (1...12).contains(month), day >= 1, day <= daysIn(month: month, year: year), hour < 24, minute < 60, second < 61
        else { return nil }
        let millisecondOfDay = ((hour * 60 + minute) * 60 + min(second, 59)) * 1000 + millisecond
        return Timestamp(milliseconds: daysFromCivil(year: year, month: month, day: day) * 86_400_000 + millisecondOfDay)
    }

    public static func format(_ timestamp: Timestamp) -> String {
        // Digits written in place, no intermediate Strings.
        if fourDigitYears.contains(timestamp.rawValue) {
            return String(unsafeUninitializedCapacity: 24) { buffer in
                digits(of: timestamp, into: buffer.baseAddress!)
                return 24
            }
        }
        let ms = timestamp.rawValue
        let days = floorDivide(ms, 86_400_000)
        let rest = ms - days * 86_400_000
        let (year, month, day) = civil(fromDays: days)
        func pad(_ value: Int64, _ width: Int) -> String {
            let digits = String(value)
            return String(repeating: "0", count: max(0, width - digits.count)) + digits
        }
        return "\(pad(year, 4))-\(pad(month, 2))-\(pad(day, 2))T\(pad(rest / 3_600_000, 2)):"
            + "\(pad(rest / 60_000 % 60, 2)):\(pad(rest / 1000 % 60, 2)).\(pad(rest % 1000, 3))Z"
    }

    /// Appends the timestamp as ``format(_:)`` writes it, without making a String in between for
    /// the years 0 to 9999: the digits are written in place.
    static func append(_ timestamp: Timestamp, to writer: inout JSONWriter) {
        guard fourDigitYears.contains(timestamp.rawValue) else { return writer.append(format(timestamp)) }
        writer.append(count: 24) { out in digits(of: timestamp, into: out) }
    }

    /// The times of the years 0 to 9999, in milliseconds since 1970: those ``digits(of:into:)`` writes.
    private static var fourDigitYears: Range<Int64> { -62_167_219_200_000..<253_402_300_800_000 }

    /// Writes the 24 bytes of a timestamp in the years 0 to 9999 at `out`, two digits at a time
    /// from a table: a division for each digit cost writing an output about 6% more instructions.
    private static func digits(of timestamp: Timestamp, into out: UnsafeMutablePointer<UInt8>) {
        let ms = timestamp.rawValue
        let days = floorDivide(ms, 86_400_000)
        let rest = Int(ms - days * 86_400_000)
        let (year, month, day) = civil(fromDays: days)
        let pairs = UnsafeRawPointer(twoDigits.utf8Start)
        func put(_ value: Int, at position: Int) {
            UnsafeMutableRawPointer(out + position).copyMemory(from: pairs + value * 2, byteCount: 2)
        }
        put(Int(year) / 100, at: 0)
        put(Int(year) % 100, at: 2)
        out[4] = UInt8(ascii: "-")
        put(Int(month), at: 5)
        out[7] = UInt8(ascii: "-")
        put(Int(day), at: 8)
        out[10] = UInt8(ascii: "T")
        put(rest / 3_600_000, at: 11)
        out[13] = UInt8(ascii: ":")
        put(rest / 60_000 % 60, at: 14)
        out[16] = UInt8(ascii: ":")
        put(rest / 1000 % 60, at: 17)
        out[19] = UInt8(ascii: ".")
        let millisecond = rest % 1000
        out[20] = UInt8(ascii: "0") + UInt8(truncatingIfNeeded: millisecond / 100)
        put(millisecond % 100, at: 21)
        out[23] = UInt8(ascii: "Z")
    }

    /// "00" to "99", one after another.
    private static var twoDigits: StaticString {
        """
        00010203040506070809101112131415161718192021222324252627282930313233343536373839\
        40414243444546474849505152535455565758596061626364656667686970717273747576777879\
        8081828384858687888990919293949596979899
        """
    }

    /// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
    public static func daysFromCivil(year: Int64, month: Int64, day: Int64) -> Int64 {
        let y = month <= 2 ? year - 1 : year
        let era = floorDivide(y, 400)
        let yearOfEra = y - era * 400
        let dayOfYear = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468
    }

    public static func civil(fromDays days: Int64) -> (year: Int64, month: Int64, day: Int64) {
        let z = days + 719_468
        let era = floorDivide(z, 146_097)
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let mp = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        return (yearOfEra + era * 400 + (month <= 2 ? 1 : 0), month, day)
    }

    static func daysIn(month: Int64, year: Int64) -> Int64 {
        switch month {
        case 2: (year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)) ? 29 : 28
        case 4, 6, 9, 11: 30
        default: 31
        }
    }
}

func floorDivide(_ a: Int64, _ b: Int64) -> Int64 {
    let q = a / b
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q
}

private struct DigitReader {
    let bytes: UnsafeBufferPointer<UInt8>
    var index = 0

    var atEnd: Bool { index == bytes.count }

    mutating func skip(_ byte: UInt8) -> Bool {
        guard index < bytes.count, bytes[index] == byte else { return false }
        index += 1
        return true
    }

    mutating func number(digits: Int) -> Int64? {
        guard index + digits <= bytes.count else { return nil }
        var value: Int64 = 0
        for offset in 0..<digits {
            let byte = bytes[index + offset]
            guard byte >= 48, byte <= 57 else { return nil }
            value = value * 10 + Int64(byte - 48)
        }
        index += digits
        return value
    }

    mutating func fractionMilliseconds() -> Int64? {
        var value: Int64 = 0
        var count = 0
        while index < bytes.count, bytes[index] >= 48, bytes[index] <= 57 {
            if count < 3 { value = value * 10 + Int64(bytes[index] - 48) }
            count += 1
            index += 1
        }
        guard count > 0 else { return nil }
        for _ in count..<max(count, 3) { value *= 10 }
        return value
    }

    /// Minutes east of UTC; 0 when the text ends without a zone.
    mutating func zoneOffsetMinutes() -> Int64? {
        if atEnd || skip(UInt8(ascii: "Z")) || skip(UInt8(ascii: "z")) { return 0 }
        let sign: Int64
        if skip(UInt8(ascii: "+")) { sign = 1 } else if skip(UInt8(ascii: "-")) { sign = -1 } else { return nil }
        guard let hours = number(digits: 2), hours < 24 else { return nil }
        var minutes: Int64 = 0
        if skip(UInt8(ascii: ":")) {
            guard let m = number(digits: 2) else { return nil }
            minutes = m
        } else if let m = number(digits: 2) {
            minutes = m
        }
        guard minutes < 60 else { return nil }
        return sign * (hours * 60 + minutes)
    }
}
