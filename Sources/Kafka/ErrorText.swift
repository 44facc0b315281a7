/// The `char *errstr, size_t errstr_size` buffer that many librdkafka calls fill on failure.
struct ErrorText {
    private var buffer = [CChar](repeating: 0, count: 512)

    mutating func fill<Result>(_ body: (UnsafeMutablePointer<CChar>, Int) -> Result) -> Result {
        let count = buffer.count
        return buffer.withUnsafeMutableBufferPointer { body($0.baseAddress!, count) }
    }

    var text: String {
        String(decoding: buffer.prefix { $0 != 0 }.map(UInt8.init(bitPattern:)), as: UTF8.self)
    }
}
