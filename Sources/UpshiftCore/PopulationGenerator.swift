/// A generated, realistic customer population as Segment JSON lines, for demos, replays and
/// benchmarks: customers near their quotas, opening tickets, failing payments, taking deliveries,
/// buying warranties, upgrading, downgrading and unsubscribing. Their behaviour does not depend on
/// what they are sent, so the true lift of every workflow is zero. The same seed gives the same stream.
public struct PopulationGenerator: Sendable {
    public var customers: Int
    public var events: Int
    public var start: Timestamp
    public var days: Int
    public var seed: UInt64

    /// `customers` and `days` must be at least 1, and `events` at least 0.
    public init(customers: Int, events: Int, start: Timestamp, days: Int = 30, seed: UInt64 = 1) {
        precondition(customers > 0 && days > 0 && events >= 0, "a population needs customers, days and no negative number of events")
        self.customers = customers
        self.events = events
        self.start = start
        self.days = days
        self.seed = seed
    }

    /// Every record in event-time order: first one `identify` per customer, then the activity.
    public func records() -> [String] {
        var lines: [String] = []
        lines.reserveCapacity(customers + events)
        generate { lines.append($0) }
        return lines
    }

    /// Streams the records in event-time order without holding them all.
    public func generate(_ emit: (String) -> Void) {
        var random = Random(state: seed)
        let plans = ["starter", "starter", "growth", "growth", "pro", "enterprise"]
        let zones = ["Europe/Paris", "America/New_York", "America/Los_Angeles", "Asia/Tokyo", "Europe/London"]
        for customer in 0..<customers {
            let plan = plans[random.next(plans.count)]
            let quota = [1_000, 10_000, 100_000][random.next(3)]
            let renewal = start + .days(Int64(20 + random.next(60)))
            var traits = JSONObject()
            traits["plan"] = .string(plan)
            traits["quota"] = .object(["api_calls": .number(Double(quota))])
            traits["timezone"] = .string(zones[random.next(zones.count)])
            traits["region"] = .string(random.next(50) == 0 ? "embargoed" : "eu")
            traits["billing_cycle"] = .string(random.next(3) == 0 ? "annual" : "monthly")
            traits["renewal_date"] = .string(renewal.description)
            traits["nps"] = .number(Double(5 + random.next(6)))
            traits["consent"] = .object(["sms": .bool(random.next(2) == 0)])
            emit(record(type: "identify", customer: customer, messageID: "i-\(customer)", time: start, extra: ["traits": .object(traits)]))
        }
        let span = Int64(days) * 86_400_000
        for index in 0..<events {
            let customer = random.next(customers)
            let time = start + TimeSpan(milliseconds: span * Int64(index) / Int64(max(events, 1)))
            let roll = random.next(1000)
            let (name, properties): (String, JSONObject) =
                switch roll {
                case 0..<600: ("Usage Recorded", ["metric": "api_calls", "quantity": .number(Double(1 + random.next(120) * (customer % 7 == 0 ? 30 : 3)))])
                case 600..<608: ("Warranty Purchased", ["price": 79])
                case 608..<612: ("Plan Changed", ["billing_cycle": "annual", "amount": 588])
                case 612..<616: ("Unsubscribed", ["channel": .string(["email", "sms", "push"][random.next(3)])])
                case 616..<617: ("Spam Complaint", [:])
                case 617..<620: ("Plan Downgraded", ["from": "pro", "to": "starter"])
                case 620..<800: ("Session Started", [:])
                case 800..<860: ("Feature Locked", ["feature": .string(["sso", "audit_log", "api_limits", "sla", "roles"][random.next(5)])])
                case 860..<900: ("Pricing Page Viewed", [:])
                case 900..<915: ("Ticket Opened", ["ticket_id": .string("t-\(index)")])
                case 915..<935: ("Ticket Closed", [:])
                case 935..<945: ("Payment Failed", [:])
                case 945..<960: ("Payment Succeeded", [:])
                case 960..<980: ("Delivery Confirmed", ["order_id": .string("o-\(index)")])
                case 980..<990: ("Trial Started", ["tier": "pro"])
                case 990..<995: ("Refund Issued", [:])
                default: ("Plan Upgraded", ["from": "starter", "to": "pro", "amount": 49])
                }
            emit(record(type: "track", customer: customer, messageID: "e-\(index)", time: time, extra: ["event": .string(name), "properties": .object(properties)]))
        }
    }

    private func record(type: String, customer: Int, messageID: String, time: Timestamp, extra: JSONObject) -> String {
        var object: JSONObject = ["type": .string(type), "userId": .string("customer-\(customer)"), "messageId": .string(messageID), "timestamp": .string(time.description)]
        for member in extra.members { object[member.key] = member.value }
        object["context"] = .object(["library": .object(["name": "upshift-simulator"])])
        var writer = JSONWriter()
        writer.write(.object(object))
        return writer.text
    }
}

/// SplitMix64: small, fast and the same everywhere.
private struct Random {
    var state: UInt64

    mutating func next(_ bound: Int) -> Int {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return Int((z ^ (z >> 31)) % UInt64(bound))
    }
}
