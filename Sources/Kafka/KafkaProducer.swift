import CRdKafka
import Synchronization

/// The outcome of one produced record: where it was written, or why it was not.
public struct DeliveryReport: Sendable, Hashable {
    /// The id ``KafkaProducer/send(_:)`` returned for the record.
    public var id: UInt64
    public var topic: String
    public var result: Result<Delivered, KafkaError>

    public struct Delivered: Sendable, Hashable {
        public var partition: Int32
        public var offset: Int64

        public init(partition: Int32, offset: Int64) {
            self.partition = partition
            self.offset = offset
        }
    }
}

/// A Kafka producer, idempotent unless configured otherwise, and transactional when
/// ``KafkaConfiguration/transactionalID`` is set (see `KafkaProducer+Transactions`).
///
/// Release a producer only after ``flush(timeout:)``: records still queued then are purged, and
/// their reports go with the producer.
///
/// Threading: safe to use from any thread. ``send(_:)`` returns once librdkafka has the record,
/// blocking only while its local queue is full; ``deliveries(timeout:)``, ``flush(timeout:)`` and the
/// transaction calls block the calling thread, so call them from a ``KafkaThread`` or a thread of
/// your own. Delivery reports are collected while those calls run and handed back by them: every
/// record sent gets exactly one report, and none is dropped.
public final class KafkaProducer: Sendable {
    let client: NativeClient
    private let topics = Mutex(TopicHandles())
    private let nextID = Atomic<UInt64>(1)

    /// - Throws: ``KafkaError`` with librdkafka's message when a property is unknown or invalid
    ///   (for example a `transactional.id` with idempotence turned off).
    public init(configuration: KafkaConfiguration, events: ClientEvents = ClientEvents()) throws(KafkaError) {
        client = try NativeClient(configuration, role: .producer, context: ClientContext(events: events)) { conf in
            rd_kafka_conf_set_dr_msg_cb(conf) { _, message, opaque in
                KafkaProducer.collect(message!, into: ClientContext.from(opaque))
            }
        }
    }

    deinit {
        topics.withLock { $0.destroyAll() }
    }

    /// Hands a record to librdkafka and returns the id its ``DeliveryReport`` will carry.
    ///
    /// The record goes to its explicit partition, or to the partition librdkafka's partitioner
    /// picks from the key (the same key always lands in the same partition).
    ///
    /// - Throws: ``KafkaError`` when librdkafka refuses the record outright: an unknown partition,
    ///   a record over `message.max.bytes`, a fatal producer state, or a transaction in error.
    @discardableResult
    public func send(_ record: ProducerRecord) throws(KafkaError) -> UInt64 {
        let id = nextID.add(1, ordering: .relaxed).oldValue
        let topic = topicHandle(record.topic)
        let headers = nativeHeaders(record.headers)
        while true {
            let error = withProduceArguments(record, topic: topic, headers: headers, id: id) {
                rd_kafka_produceva(client.handle, $0.baseAddress, $0.count)
            }
            guard let error else { return id }
            let failure = KafkaError(consuming: error, operation: "produce to \(record.topic)")
            guard failure.code == .queueFull else {
                if let headers { rd_kafka_headers_destroy(headers) }
                throw failure
            }
            rd_kafka_poll(client.handle, 10)
        }
    }

    /// Serves delivery reports for up to `timeout` (returning early once any arrive) and hands
    /// back every report collected since the last call.
    public func deliveries(timeout: Duration = .zero) -> [DeliveryReport] {
        rd_kafka_poll(client.handle, timeout.timeoutMilliseconds)
        return takeDeliveries()
    }

    /// Waits until every record sent so far has its report, and hands back the reports.
    ///
    /// - Throws: ``KafkaError`` `timedOut` when records are still in flight after `timeout`;
    ///   the reports collected so far stay available to the next call.
    public func flush(timeout: Duration) throws(KafkaError) -> [DeliveryReport] {
        try KafkaError.check(rd_kafka_flush(client.handle, timeout.timeoutMilliseconds), "flush producer")
        return takeDeliveries()
    }

    /// Records handed to librdkafka that have no report yet (plus librdkafka's own pending requests).
    public var inFlightCount: Int { Int(rd_kafka_outq_len(client.handle)) }

    /// The fatal error that put this producer out of service (for example fencing), if one was raised.
    public var fatalError: KafkaError? { client.fatalError }

    private func takeDeliveries() -> [DeliveryReport] {
        client.context.deliveries.withLock { deliveries in
            defer { deliveries.reports = [] }
            return deliveries.reports
        }
    }

    // MARK: librdkafka plumbing

    private func topicHandle(_ name: String) -> OpaquePointer {
        topics.withLock { $0.handle(for: name, in: client.handle) }
    }

    private func nativeHeaders(_ headers: [KafkaHeader]) -> OpaquePointer? {
        guard !headers.isEmpty else { return nil }
        let native = rd_kafka_headers_new(headers.count)!
        for header in headers {
            if let value = header.value {
                value.withUnsafeBytes { bytes in
                    _ = rd_kafka_header_add(native, header.key, -1, bytes.baseAddress, bytes.count)
                }
            } else {
                rd_kafka_header_add(native, header.key, -1, nil, 0)
            }
        }
        return native
    }

    /// The arguments of `rd_kafka_produceva`, on the stack: this runs once per record.
    private func withProduceArguments<Result>(
        _ record: ProducerRecord,
        topic: OpaquePointer,
        headers: OpaquePointer?,
        id: UInt64,
        _ body: (UnsafeBufferPointer<rd_kafka_vu_t>) -> Result
    ) -> Result {
        withOptionalBytes(record.key) { key in
            withOptionalBytes(record.value) { value in
                withUnsafeTemporaryAllocation(of: rd_kafka_vu_t.self, capacity: 8) { arguments in
                    var count = 0
                    func add(_ type: rd_kafka_vtype_t, _ value: rd_kafka_vu_t.__Unnamed_union_u) {
                        arguments.initializeElement(at: count, to: rd_kafka_vu_t(vtype: type, u: value))
                        count += 1
                    }
                    add(RD_KAFKA_VTYPE_RKT, .init(rkt: topic))
                    add(RD_KAFKA_VTYPE_MSGFLAGS, .init(i: RD_KAFKA_MSG_F_COPY))
                    add(RD_KAFKA_VTYPE_OPAQUE, .init(ptr: UnsafeMutableRawPointer(bitPattern: UInt(id))))
                    add(RD_KAFKA_VTYPE_KEY, .init(mem: .init(ptr: key.base, size: key.count)))
                    add(RD_KAFKA_VTYPE_VALUE, .init(mem: .init(ptr: value.base, size: value.count)))
                    if let partition = record.partition { add(RD_KAFKA_VTYPE_PARTITION, .init(i32: partition)) }
                    if let timestamp = record.timestamp { add(RD_KAFKA_VTYPE_TIMESTAMP, .init(i64: timestamp)) }
                    if let headers { add(RD_KAFKA_VTYPE_HEADERS, .init(headers: headers)) }
                    return body(UnsafeBufferPointer(rebasing: arguments[..<count]))
                }
            }
        }
    }

    private static func collect(_ message: UnsafePointer<rd_kafka_message_t>, into context: ClientContext) {
        let m = message.pointee
        context.deliveries.withLock { deliveries in
            let topic = deliveries.topicName(m.rkt)
            let result: Result<DeliveryReport.Delivered, KafkaError> =
                if m.err == RD_KAFKA_RESP_ERR_NO_ERROR {
                    .success(.init(partition: m.partition, offset: m.offset))
                } else {
                    .failure(KafkaError(m.err, operation: "deliver to \(topic)[\(m.partition)]"))
                }
            deliveries.reports.append(
                DeliveryReport(id: UInt64(UInt(bitPattern: m._private)), topic: topic, result: result))
        }
    }
}

/// librdkafka topic handles by name, created on first use and kept for the producer's life.
/// The last one used is checked first: producers mostly write one topic many times in a row.
private struct TopicHandles: @unchecked Sendable {
    private var byName: [String: OpaquePointer] = [:]
    private var last: (name: String, handle: OpaquePointer)?

    mutating func handle(for name: String, in client: OpaquePointer) -> OpaquePointer {
        if let last, last.name == name { return last.handle }
        let handle =
            byName[name]
            ?? {
                let handle = rd_kafka_topic_new(client, name, nil)!
                byName[name] = handle
                return handle
            }()
        last = (name, handle)
        return handle
    }

    mutating func destroyAll() {
        for handle in byName.values { rd_kafka_topic_destroy(handle) }
        byName = [:]
        last = nil
    }
}

/// A byte range for `rd_kafka_vu_t.mem`: a null pointer for a missing key or value.
private struct RawBytes {
    var base: UnsafeMutableRawPointer?
    var count: Int
}

private func withOptionalBytes<Result>(_ bytes: [UInt8]?, _ body: (RawBytes) -> Result) -> Result {
    guard let bytes else { return body(RawBytes(base: nil, count: 0)) }
    return bytes.withUnsafeBytes { buffer in
        body(RawBytes(base: UnsafeMutableRawPointer(mutating: buffer.baseAddress ?? emptyBytes), count: buffer.count))
    }
}

/// Where an empty (but present) key or value points, so that librdkafka does not take it for a null one.
nonisolated(unsafe) private let emptyBytes = UnsafeRawPointer(UnsafeMutableRawPointer.allocate(byteCount: 1, alignment: 1))
