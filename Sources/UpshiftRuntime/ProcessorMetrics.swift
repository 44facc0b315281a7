import CoreMetrics
import Kafka
import Synchronization
import UpshiftCore

/// What the processor reports through swift-metrics; `upshift run` serves it in Prometheus
/// format on `/metrics`. Every label takes values from a bounded set (topics, partitions,
/// workflow ids, steps, channels, variants, suppression names, record fields), never from event
/// content, so the number of series stays fixed. Handles are made once per label set and kept.
final class ProcessorMetrics: Sendable {
    private let factory: any MetricsFactory
    private let counters = Mutex<[Series: Counter]>([:])
    private let gauges = Mutex<[Series: Gauge]>([:])
    private let timers = Mutex<[Series: Timer]>([:])

    /// A metric name and its label values (each name always has the same label names), kept in
    /// fields rather than an array: this key is built for every output, and should not allocate.
    private struct Series: Hashable {
        var name: String
        var first = "", second = "", third = "", rest = ""

        init(_ name: String, _ labels: KeyValuePairs<String, String>) {
            self.name = name
            for (index, label) in labels.enumerated() {
                switch index {
                case 0: first = label.value
                case 1: second = label.value
                case 2: third = label.value
                default: rest += "\u{0}" + label.value
                }
            }
        }
    }

    init(factory: any MetricsFactory) {
        self.factory = factory
    }

    func count(_ name: String, _ labels: KeyValuePairs<String, String> = [:], by amount: Int = 1) {
        Self.handle(in: counters, Series(name, labels)) {
            Counter(label: name, dimensions: labels.map { ($0.key, $0.value) }, factory: factory)
        }.increment(by: amount)
    }

    func set(_ name: String, _ labels: KeyValuePairs<String, String> = [:], to value: Double) {
        Self.handle(in: gauges, Series(name, labels)) {
            Gauge(label: name, dimensions: labels.map { ($0.key, $0.value) }, factory: factory)
        }.record(value)
    }

    func record(_ name: String, _ durations: [Duration]) {
        guard !durations.isEmpty else { return }
        let timer = Self.handle(in: timers, Series(name, [:])) { Timer(label: name, dimensions: [], factory: factory) }
        for duration in durations {
            let (seconds, attoseconds) = duration.components
            timer.recordNanoseconds(max(0, seconds * 1_000_000_000 + attoseconds / 1_000_000_000))
        }
    }

    /// The handle of a series, made on first use.
    private static func handle<Handle>(in cache: borrowing Mutex<[Series: Handle]>, _ series: Series, make: () -> Handle) -> Handle {
        cache.withLock { handles in
            if let handle = handles[series] { return handle }
            let handle = make()
            handles[series] = handle
            return handle
        }
    }

    // MARK: What the processor reports

    func consumed(topic: String, type: String, count amount: Int) {
        count("upshift_events_consumed_total", ["topic": topic, "type": type], by: amount)
    }

    func decided(_ outputs: [Output]) {
        for output in outputs {
            let workflow = output.workflowID ?? ""
            switch output.kind {
            case .offer, .task:
                count("upshift_decisions_total", [
                    "workflow": workflow, "step": output.step ?? "", "channel": output.channel?.rawValue ?? output.queue ?? "",
                    "variant": output.variant ?? "",
                ])
            case .suppression:
                for reason in output.reasons { count("upshift_suppressions_total", ["workflow": workflow, "reason": reason]) }
            case .holdout:
                count("upshift_holdouts_total", ["workflow": workflow])
            case .exit:
                count("upshift_exits_total", ["workflow": workflow])
            case .conversion:
                count("upshift_conversions_total", ["workflow": workflow, "arm": output.arm, "conversion": output.reasons.first ?? ""])
            case .guardrail:
                count("upshift_guardrails_total", ["workflow": workflow, "arm": output.arm, "guardrail": output.reasons.first ?? ""])
            case .pause:
                count("upshift_pauses_total", ["workflow": workflow, "arm": output.variant ?? "", "guardrail": output.reasons.first ?? ""])
            case .lateEvent:
                count("upshift_late_events_total")
            }
        }
    }

    /// By the kind of problem and the field (a JSON path of the event format, or `record`).
    func deadLettered(_ rejection: Rejection) {
        count("upshift_dead_letters_total", ["reason": rejection.problem, "field": rejection.field])
    }

    func transaction(committed: Bool) {
        count("upshift_transactions_total", ["result": committed ? "committed" : "aborted"])
    }

    /// The librdkafka statistics worth alerting on: queue depths, round trips, consumer lag.
    func client(_ statistics: ClientStatistics) {
        set("upshift_kafka_queued_messages", ["client": statistics.type], to: Double(statistics.queuedMessages))
        for broker in statistics.brokers {
            guard let roundTrip = broker.averageRoundTrip else { continue }
            set("upshift_kafka_broker_round_trip_seconds", ["client": statistics.type, "broker": String(broker.nodeID)],
                to: Double(roundTrip / .microseconds(1)) / 1_000_000)
        }
        for partition in statistics.partitions where statistics.type == "consumer" {
            if let lag = partition.consumerLag {
                set("upshift_consumer_lag", ["topic": partition.topic, "partition": String(partition.partition)], to: Double(lag))
            }
        }
    }

    func partition(_ partition: Int32, customers: Int, stateBytes: Int) {
        set("upshift_customers", ["partition": String(partition)], to: Double(customers))
        set("upshift_state_bytes", ["partition": String(partition)], to: Double(stateBytes))
    }
}
