import ArgumentParser
import Foundation
import Kafka
import UpshiftCore
import UpshiftRuntime
import Yams

/// The YAML file `upshift run --config` reads.
struct RunConfiguration: Decodable {
    var applicationID: String
    var instanceID: String?
    var bootstrapServers: String
    var inputTopics: [String]
    var workflows: [String]
    var clock: RuntimeConfiguration.Clock?
    var guarantee: RuntimeConfiguration.Guarantee?
    var commitInterval: String?
    var staticMembership: Bool?
    var maximumRecordBytes: Int?
    var shutdownTimeout: String?
    var topics: Topics?
    /// Passed to librdkafka unchanged (SASL, SSL, tuning).
    var kafka: [String: String]?

    struct Topics: Decodable {
        var email, inApp, sms, push, customerSuccess, suppressions, holdouts, outcomes, deadLetter, changelog: String?

        enum CodingKeys: String, CodingKey {
            case email, sms, push, suppressions, holdouts, outcomes, changelog
            case inApp = "in_app"
            case customerSuccess = "customer_success"
            case deadLetter = "dead_letter"
        }
    }

    enum CodingKeys: String, CodingKey {
        case workflows, clock, guarantee, topics, kafka
        case applicationID = "application_id"
        case instanceID = "instance_id"
        case bootstrapServers = "bootstrap_servers"
        case inputTopics = "input_topics"
        case commitInterval = "commit_interval"
        case staticMembership = "static_membership"
        case maximumRecordBytes = "maximum_record_bytes"
        case shutdownTimeout = "shutdown_timeout"
    }

    static func load(_ path: String) throws -> RunConfiguration {
        do {
            return try YAMLDecoder().decode(RunConfiguration.self, from: try readText(path))
        } catch let error as DecodingError {
            throw ValidationError("\(path): \(describe(error))")
        }
    }

    /// The runtime's configuration; workflow paths are relative to the configuration file.
    func runtime(relativeTo path: String) throws -> (RuntimeConfiguration, [String]) {
        var kafkaSettings = KafkaConfiguration(bootstrapServers: bootstrapServers, properties: kafka ?? [:])
        kafkaSettings.clientID = applicationID
        let instance = instanceID ?? ProcessInfo.processInfo.hostName
        var configuration = RuntimeConfiguration(applicationID: applicationID, instanceID: instance, kafka: kafkaSettings, inputTopics: inputTopics)
        if let clock { configuration.clock = clock }
        if let guarantee { configuration.guarantee = guarantee }
        if let commitInterval { configuration.commitInterval = try duration(commitInterval, "commit_interval", example: "100ms", in: path) }
        if let shutdownTimeout { configuration.shutdownTimeout = try duration(shutdownTimeout, "shutdown_timeout", example: "30s", in: path) }
        if let staticMembership { configuration.staticMembership = staticMembership }
        if let maximumRecordBytes { configuration.maximumRecordBytes = maximumRecordBytes }
        if let topics {
            var names = OutputTopics()
            names.email = topics.email ?? names.email
            names.inApp = topics.inApp ?? names.inApp
            names.sms = topics.sms ?? names.sms
            names.push = topics.push ?? names.push
            names.customerSuccess = topics.customerSuccess ?? names.customerSuccess
            names.suppressions = topics.suppressions ?? names.suppressions
            names.holdouts = topics.holdouts ?? names.holdouts
            names.outcomes = topics.outcomes ?? names.outcomes
            names.deadLetter = topics.deadLetter ?? names.deadLetter
            names.changelog = topics.changelog ?? names.changelog
            configuration.topics = names
        }
        let base = URL(fileURLWithPath: path).deletingLastPathComponent()
        let workflowPaths = workflows.map { $0.hasPrefix("/") ? $0 : base.appendingPathComponent($0).standardized.path }
        return (configuration, workflowPaths)
    }

    private func duration(_ text: String, _ field: String, example: String, in path: String) throws -> Duration {
        guard let span = TimeSpan(parsing: text), span.milliseconds > 0 else {
            throw ValidationError("\(path): \(field): \"\(text)\" is not a duration such as \(example)")
        }
        return .milliseconds(span.milliseconds)
    }

    private static func describe(_ error: DecodingError) -> String {
        func path(_ context: DecodingError.Context) -> String {
            context.codingPath.map(\.stringValue).joined(separator: ".")
        }
        switch error {
        case .keyNotFound(let key, let context):
            return "\(([path(context)] + [key.stringValue]).filter { !$0.isEmpty }.joined(separator: ".")): missing"
        case .typeMismatch(_, let context), .valueNotFound(_, let context), .dataCorrupted(let context):
            return "\(path(context)): \(context.debugDescription)"
        @unknown default:
            return "\(error)"
        }
    }
}
