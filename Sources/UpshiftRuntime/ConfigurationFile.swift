import Foundation
import Kafka
import Logging
import UpshiftCore
import Yams

/// The YAML file `upshift run --config` reads (an example is `deploy/config/upshift.yaml`), with
/// environment overrides and secret references applied.
///
/// - Every top-level field can be overridden by `UPSHIFT_<FIELD>` (`UPSHIFT_BOOTSTRAP_SERVERS`,
///   `UPSHIFT_INPUT_TOPICS=a,b`), a topic name by `UPSHIFT_TOPICS_<NAME>`, and a librdkafka property
///   by `UPSHIFT_KAFKA_<PROPERTY>` with dots as underscores (`UPSHIFT_KAFKA_SASL_PASSWORD`).
/// - A text value may refer to a secret as `${env:NAME}` or `${file:/path}` (trailing newline
///   dropped), so that no secret needs to be in the file. Values are never logged, and messages
///   about them name the field and the variable or file, never the value.
/// - `instance_id` defaults to `HOSTNAME`, a pod's name under Kubernetes.
public struct ConfigurationFile: Sendable {
    public var runtime: RuntimeConfiguration
    /// Workflow files, relative paths resolved against the configuration file's directory.
    public var workflows: [String]
    /// Serves `/metrics`, `/healthz` and `/readyz`; 0 picks a free port.
    public var httpPort = 8080
    public var logFormat: LineLogHandler.Format = .json
    public var logLevel: Logger.Level = .info

    static let fields = [
        "application_id", "instance_id", "bootstrap_servers", "input_topics", "workflows", "clock", "guarantee",
        "commit_interval", "shutdown_timeout", "static_membership", "maximum_record_bytes", "http_port",
        "log_format", "log_level", "topics", "kafka",
    ]
    static let topicFields = [
        "email", "in_app", "sms", "push", "customer_success", "suppressions", "holdouts", "outcomes", "dead_letter", "changelog", "control",
    ]

    /// - Parameters:
    ///   - environment: the process environment, for overrides and `${env:}` references.
    ///   - readFile: reads a `${file:}` reference.
    /// - Throws: ``DiagnosticsError`` with every problem, each with its file, line and column (or
    ///   the environment variable it came from).
    public static func load(
        _ text: String, file: String, environment: [String: String],
        readFile: @escaping (String) throws -> String = { try String(contentsOfFile: $0, encoding: .utf8) }
    ) throws(DiagnosticsError) -> ConfigurationFile {
        var reader = Reader(file: file, environment: environment, readFile: readFile)
        reader.read(text)
        reader.applyEnvironment()
        guard let configuration = reader.configuration(), reader.diagnostics.isEmpty else {
            throw DiagnosticsError(diagnostics: reader.diagnostics)
        }
        return configuration
    }
}

/// A value from the file or the environment, with where it came from.
private struct Setting {
    enum Value {
        case text(String)
        case list([String])
        case map([(key: String, value: String)])
    }

    var value: Value
    var file: String
    var line: Int
    var column: Int
}

private struct Reader {
    let file: String
    let environment: [String: String]
    let readFile: (String) throws -> String
    var settings: [String: Setting] = [:]
    /// Entries of `topics` and `kafka`, per key, each with its own place.
    var entries: [String: [String: Setting]] = ["topics": [:], "kafka": [:]]
    var diagnostics: [Diagnostic] = []

    init(file: String, environment: [String: String], readFile: @escaping (String) throws -> String) {
        self.file = file
        self.environment = environment
        self.readFile = readFile
    }

    mutating func report(_ setting: Setting, _ field: String, _ message: String, hint: String? = nil) {
        diagnostics.append(Diagnostic(file: setting.file, line: setting.line, column: setting.column, message: "\(field): \(message)", hint: hint))
    }

    mutating func report(_ node: Node, _ message: String, hint: String? = nil) {
        diagnostics.append(Diagnostic(file: file, line: node.mark?.line ?? 1, column: node.mark?.column ?? 1, message: message, hint: hint))
    }

    // MARK: The file

    mutating func read(_ text: String) {
        let root: Node
        do {
            guard let document = try Yams.compose(yaml: text) else {
                diagnostics.append(Diagnostic(file: file, line: 1, column: 1, message: "the file is empty", hint: "start from deploy/config/upshift.yaml"))
                return
            }
            root = document
        } catch let error as YamlError {
            diagnostics.append(Diagnostic(yaml: error, file: file))
            return
        } catch {
            diagnostics.append(Diagnostic(file: file, line: 1, column: 1, message: "not YAML: \(error)"))
            return
        }
        guard let mapping = root.mapping else { return report(root, "the top level must be a mapping of settings") }
        for (keyNode, value) in mapping {
            let key = keyNode.string ?? ""
            guard ConfigurationFile.fields.contains(key) else {
                report(keyNode, "unknown setting \"\(key)\"", hint: closest(to: key, in: ConfigurationFile.fields).map { "did you mean \"\($0)\"?" })
                continue
            }
            if key == "topics" || key == "kafka" {
                readEntries(of: key, value)
            } else if let setting = setting(value, key) {
                settings[key] = setting
            }
        }
    }

    mutating func setting(_ node: Node, _ field: String) -> Setting? {
        let place = (file, node.mark?.line ?? 1, node.mark?.column ?? 1)
        switch node {
        case .scalar(let scalar):
            return Setting(value: .text(scalar.string), file: place.0, line: place.1, column: place.2)
        case .sequence(let sequence):
            var items: [String] = []
            for item in sequence {
                guard case .scalar(let scalar) = item else {
                    report(item, "\(field): each item must be text")
                    return nil
                }
                items.append(scalar.string)
            }
            return Setting(value: .list(items), file: place.0, line: place.1, column: place.2)
        default:
            report(node, "\(field): must be text or a list")
            return nil
        }
    }

    mutating func readEntries(of field: String, _ node: Node) {
        guard let mapping = node.mapping else { return report(node, "\(field): must be a mapping") }
        for (keyNode, value) in mapping {
            let key = keyNode.string ?? ""
            if field == "topics", !ConfigurationFile.topicFields.contains(key) {
                report(keyNode, "topics: unknown topic \"\(key)\"",
                       hint: closest(to: key, in: ConfigurationFile.topicFields).map { "did you mean \"\($0)\"?" }
                           ?? "expected one of \(ConfigurationFile.topicFields.joined(separator: ", "))")
                continue
            }
            guard case .scalar(let scalar) = value else {
                report(value, "\(field).\(key): must be text")
                continue
            }
            entries[field]![key] = Setting(value: .text(scalar.string), file: file, line: value.mark?.line ?? 1, column: value.mark?.column ?? 1)
        }
    }

    // MARK: The environment

    mutating func applyEnvironment() {
        for (name, value) in environment.sorted(by: { $0.key < $1.key }) where name.hasPrefix("UPSHIFT_") {
            let setting = Setting(value: .text(value), file: "$\(name)", line: 1, column: 1)
            let key = name.dropFirst("UPSHIFT_".count).lowercased()
            if key.hasPrefix("kafka_") {
                entries["kafka"]![key.dropFirst("kafka_".count).replacingOccurrences(of: "_", with: ".")] = setting
            } else if key.hasPrefix("topics_") {
                entries["topics"]![String(key.dropFirst("topics_".count))] = setting
            } else if ConfigurationFile.fields.contains(key) {
                settings[key] = ["input_topics", "workflows"].contains(key)
                    ? Setting(value: .list(value.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }), file: "$\(name)", line: 1, column: 1)
                    : setting
            } else {
                diagnostics.append(Diagnostic(
                    file: "$\(name)", line: 1, column: 1, message: "no setting is called \"\(key)\"",
                    hint: closest(to: key, in: ConfigurationFile.fields).map { "did you mean UPSHIFT_\($0.uppercased())?" }))
            }
        }
    }

    // MARK: Typed values

    /// Replaces `${env:NAME}` and `${file:PATH}` references.
    mutating func resolve(_ text: String, _ setting: Setting, _ field: String) -> String? {
        var result = ""
        var rest = Substring(text)
        while let start = rest.range(of: "${") {
            result += rest[..<start.lowerBound]
            guard let end = rest[start.upperBound...].firstIndex(of: "}") else {
                report(setting, field, "a reference starting with ${ has no closing }")
                return nil
            }
            let reference = rest[start.upperBound..<end]
            if reference.hasPrefix("env:") {
                let name = String(reference.dropFirst(4))
                guard let value = environment[name] else {
                    report(setting, field, "the environment variable \(name) is not set")
                    return nil
                }
                result += value
            } else if reference.hasPrefix("file:") {
                let path = String(reference.dropFirst(5))
                do {
                    var value = try readFile(path)
                    while value.hasSuffix("\n") || value.hasSuffix("\r") { value.removeLast() }
                    result += value
                } catch {
                    report(setting, field, "cannot read the secret file \(path)")
                    return nil
                }
            } else {
                report(setting, field, "unknown reference ${\(reference)}", hint: "use ${env:NAME} or ${file:/path}")
                return nil
            }
            rest = rest[rest.index(after: end)...]
        }
        return result + rest
    }

    mutating func text(_ field: String, required: Bool = false) -> String? {
        guard let setting = settings[field] else {
            if required {
                diagnostics.append(Diagnostic(
                    file: file, line: 1, column: 1, message: "\(field): missing",
                    hint: "set it in the file or as UPSHIFT_\(field.uppercased())"))
            }
            return nil
        }
        guard case .text(let text) = setting.value, !text.isEmpty else {
            report(setting, field, "must be text")
            return nil
        }
        return resolve(text, setting, field)
    }

    mutating func list(_ field: String) -> [String]? {
        guard let setting = settings[field] else {
            diagnostics.append(Diagnostic(
                file: file, line: 1, column: 1, message: "\(field): missing",
                hint: "set it in the file or as UPSHIFT_\(field.uppercased())=a,b"))
            return nil
        }
        switch setting.value {
        case .list(let items) where !items.isEmpty: return items.compactMap { resolve($0, setting, field) }
        case .text(let text) where !text.isEmpty: return [text]
        default:
            report(setting, field, "must be a list of one or more names")
            return nil
        }
    }

    mutating func duration(_ field: String) -> Duration? {
        guard let text = text(field) else { return nil }
        guard let span = TimeSpan(parsing: text), span.milliseconds > 0 else {
            report(settings[field]!, field, "\"\(text)\" is not a duration", hint: "such as 100ms, 30s or 5m")
            return nil
        }
        return .milliseconds(span.milliseconds)
    }

    mutating func integer(_ field: String, in range: ClosedRange<Int>) -> Int? {
        guard let text = text(field) else { return nil }
        guard let value = Int(text), range.contains(value) else {
            report(settings[field]!, field, "\"\(text)\" is not a whole number from \(range.lowerBound) to \(range.upperBound)")
            return nil
        }
        return value
    }

    mutating func choice<T: RawRepresentable<String>>(_ field: String, _ choices: [T]) -> T? {
        guard let text = text(field) else { return nil }
        guard let value = T(rawValue: text) else {
            report(settings[field]!, field, "\"\(text)\" is not one of \(choices.map(\.rawValue).joined(separator: ", "))")
            return nil
        }
        return value
    }

    mutating func flag(_ field: String) -> Bool? {
        guard let text = text(field) else { return nil }
        switch text {
        case "true": return true
        case "false": return false
        default:
            report(settings[field]!, field, "\"\(text)\" is not true or false")
            return nil
        }
    }

    mutating func configuration() -> ConfigurationFile? {
        let applicationID = text("application_id", required: true)
        let bootstrap = text("bootstrap_servers", required: true)
        let inputs = list("input_topics")
        let workflows = list("workflows")
        var properties: [String: String] = [:]
        for (key, setting) in entries["kafka"]!.sorted(by: { $0.key < $1.key }) {
            guard case .text(let value) = setting.value, let resolved = resolve(value, setting, "kafka.\(key)") else { continue }
            properties[key] = resolved
        }
        let instance = text("instance_id") ?? environment["HOSTNAME"] ?? ProcessInfo.processInfo.hostName
        let clock = choice("clock", [RuntimeConfiguration.Clock.wallClock, .streamTime])
        let guarantee = choice("guarantee", [RuntimeConfiguration.Guarantee.exactlyOnce, .atLeastOnce])
        let commitInterval = duration("commit_interval")
        let shutdownTimeout = duration("shutdown_timeout")
        let maximumRecordBytes = integer("maximum_record_bytes", in: 1...100_000_000)
        let staticMembership = flag("static_membership")
        let topics = topics()
        let port = integer("http_port", in: 0...65535)
        let format = choice("log_format", [LineLogHandler.Format.json, .text])
        let level = choice("log_level", Logger.Level.allCases)
        guard let applicationID, let bootstrap, let inputs, let workflows else { return nil }

        var kafka = KafkaConfiguration(bootstrapServers: bootstrap, properties: properties)
        kafka.clientID = applicationID
        var runtime = RuntimeConfiguration(applicationID: applicationID, instanceID: instance, kafka: kafka, inputTopics: inputs)
        runtime.topics = topics
        if let clock { runtime.clock = clock }
        if let guarantee { runtime.guarantee = guarantee }
        if let commitInterval { runtime.commitInterval = commitInterval }
        if let shutdownTimeout { runtime.shutdownTimeout = shutdownTimeout }
        if let maximumRecordBytes { runtime.maximumRecordBytes = maximumRecordBytes }
        if let staticMembership { runtime.staticMembership = staticMembership }

        let base = URL(fileURLWithPath: file).deletingLastPathComponent()
        var result = ConfigurationFile(
            runtime: runtime,
            workflows: workflows.map { $0.hasPrefix("/") ? $0 : base.appendingPathComponent($0).standardized.path })
        if let port { result.httpPort = port }
        if let format { result.logFormat = format }
        if let level { result.logLevel = level }
        return result
    }

    mutating func topics() -> OutputTopics {
        var names = OutputTopics()
        for (key, setting) in entries["topics"]!.sorted(by: { $0.key < $1.key }) {
            guard case .text(let value) = setting.value, let name = resolve(value, setting, "topics.\(key)"), !name.isEmpty else {
                report(setting, "topics.\(key)", "must be a topic name")
                continue
            }
            switch key {
            case "email": names.email = name
            case "in_app": names.inApp = name
            case "sms": names.sms = name
            case "push": names.push = name
            case "customer_success": names.customerSuccess = name
            case "suppressions": names.suppressions = name
            case "holdouts": names.holdouts = name
            case "outcomes": names.outcomes = name
            case "dead_letter": names.deadLetter = name
            case "changelog": names.changelog = name
            case "control": names.control = name
            default:
                report(setting, "topics", "unknown topic \"\(key)\"", hint: "expected one of \(ConfigurationFile.topicFields.joined(separator: ", "))")
            }
        }
        return names
    }
}
