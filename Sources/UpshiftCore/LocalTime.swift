import Foundation

/// Wall-clock time in a customer's time zone, for quiet hours. Offsets come from the system's
/// time zone database, so daylight-saving changes are followed.
public enum LocalTime {
    public static func isKnownZone(_ identifier: String) -> Bool {
        TimeZone(identifier: identifier) != nil
    }

    /// Minutes after local midnight at `time`, in `zone` (UTC when unknown).
    public static func minuteOfDay(at time: Timestamp, zone identifier: String) -> Int {
        let local = time.rawValue + offset(at: time, in: zone(identifier))
        return Int(local - floorDivide(local, 86_400_000) * 86_400_000) / 60_000
    }

    /// The first instant at or after `time` whose local wall-clock reads `minute` minutes after
    /// midnight. When that wall-clock time does not exist (the hour skipped by a daylight-saving
    /// change), the first instant after the gap.
    public static func next(minuteOfDay minute: Int, atOrAfter time: Timestamp, zone identifier: String) -> Timestamp {
        let zone = zone(identifier)
        let localNow = time.rawValue + offset(at: time, in: zone)
        var day = floorDivide(localNow, 86_400_000)
        for _ in 0..<3 {
            let wall = day * 86_400_000 + Int64(minute) * 60_000
            // Two passes settle the offset; a wall time in a gap maps past it.
            var guess = wall - offset(at: Timestamp(milliseconds: wall), in: zone)
            guess = wall - offset(at: Timestamp(milliseconds: guess), in: zone)
            let candidate = Timestamp(milliseconds: guess)
            if candidate >= time { return candidate }
            day += 1
        }
        return time
    }

    private static func zone(_ identifier: String) -> TimeZone {
        TimeZone(identifier: identifier) ?? TimeZone(identifier: "UTC")!
    }

    private static func offset(at time: Timestamp, in zone: TimeZone) -> Int64 {
        Int64(zone.secondsFromGMT(for: Date(timeIntervalSince1970: Double(time.rawValue) / 1000))) * 1000
    }
}
