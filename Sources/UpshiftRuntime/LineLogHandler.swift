import Foundation
import Logging
import UpshiftCore

/// A swift-log handler that writes one line per log event: a JSON object for log collectors
/// (`time`, `level`, `logger`, `message`, then the metadata as string fields), or a short text
/// line for a person at a terminal. Lines go to `write`, standard error by default.
public struct LineLogHandler: LogHandler {
    public enum Format: String, Sendable {
        case json
        case text
    }

    public var logLevel: Logger.Level = .info
    public var metadata: Logger.Metadata = [:]
    public var metadataProvider: Logger.MetadataProvider?
    private let label: String
    private let format: Format
    private let clock: @Sendable () -> Date
    private let write: @Sendable (String) -> Void

    public init(
        label: String,
        format: Format = .json,
        clock: @escaping @Sendable () -> Date = Date.init,
        write: @escaping @Sendable (String) -> Void = { line in FileHandle.standardError.write(Data((line + "\n").utf8)) }
    ) {
        self.label = label
        self.format = format
        self.clock = clock
        self.write = write
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var fields = metadata
        if let provided = metadataProvider?.get() { fields.merge(provided) { $1 } }
        if let extra = event.metadata { fields.merge(extra) { $1 } }
        let sorted = fields.sorted { $0.key < $1.key }
        switch format {
        case .json:
            var object: JSONObject = [
                "time": .string(ISO8601.format(Timestamp(milliseconds: Int64(clock().timeIntervalSince1970 * 1000)))),
                "level": .string(event.level.rawValue),
                "logger": .string(label),
                "message": .string(event.message.description),
            ]
            for (key, value) in sorted where object[key] == nil { object[key] = .string(value.description) }
            var writer = JSONWriter()
            writer.write(.object(object))
            write(writer.text)
        case .text:
            let details = sorted.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
            write(details.isEmpty ? event.message.description : "\(event.message) (\(details))")
        }
    }
}
