import Foundation
import Kafka
import Testing
import UpshiftCore
import UpshiftRuntime

@Suite("Configuration file")
struct ConfigurationFileTests {
    let minimal = """
        application_id: upsell
        bootstrap_servers: kafka:9092
        input_topics: [events]
        workflows: [workflows/shared.yaml]
        """

    func load(_ text: String, environment: [String: String] = [:], files: [String: String] = [:]) throws(DiagnosticsError) -> ConfigurationFile {
        try ConfigurationFile.load(text, file: "/etc/upshift/upshift.yaml", environment: environment) { path in
            guard let text = files[path] else { throw CocoaError(.fileNoSuchFile) }
            return text
        }
    }

    func messages(_ text: String, environment: [String: String] = [:]) -> [String] {
        do {
            _ = try load(text, environment: environment)
            return []
        } catch {
            return error.diagnostics.map(\.description)
        }
    }

    @Test func readsTheShippedExample() throws {
        let path = repository.appendingPathComponent("deploy/config/upshift.yaml").path
        let file = try ConfigurationFile.load(try String(contentsOfFile: path, encoding: .utf8), file: path, environment: ["HOSTNAME": "upshift-0"])
        #expect(file.runtime.instanceID == "upshift-0")
        #expect(file.runtime.staticMembership)
        #expect(file.runtime.inputTopics == ["product-events"])
        #expect(file.workflows.map { URL(fileURLWithPath: $0).lastPathComponent }
            == ["shared.yaml", "saas-quota.yaml", "ecommerce-warranty.yaml", "subscription-renewal.yaml"])
        #expect(file.workflows.allSatisfy { FileManager.default.fileExists(atPath: $0) })
        #expect(file.httpPort == 8080)
    }

    @Test func environmentOverridesFieldsTopicsAndLibrdkafkaProperties() throws {
        let file = try load(minimal, environment: [
            "UPSHIFT_BOOTSTRAP_SERVERS": "broker-1:9093,broker-2:9093",
            "UPSHIFT_INPUT_TOPICS": "events, billing",
            "UPSHIFT_COMMIT_INTERVAL": "250ms",
            "UPSHIFT_TOPICS_DEAD_LETTER": "prod.upshift.dlq",
            "UPSHIFT_KAFKA_SASL_MECHANISMS": "PLAIN",
            "UPSHIFT_INSTANCE_ID": "pod-7",
        ])
        #expect(file.runtime.kafka.bootstrapServers == "broker-1:9093,broker-2:9093")
        #expect(file.runtime.inputTopics == ["events", "billing"])
        #expect(file.runtime.commitInterval == .milliseconds(250))
        #expect(file.runtime.topics.deadLetter == "prod.upshift.dlq")
        #expect(file.runtime.kafka.properties == ["sasl.mechanisms": "PLAIN"])
        #expect(file.runtime.instanceID == "pod-7")
        #expect(file.workflows == ["/etc/upshift/workflows/shared.yaml"])
    }

    @Test func secretsComeFromTheEnvironmentOrFiles() throws {
        let file = try load(minimal + """

            kafka:
              sasl.username: ${env:KAFKA_USER}
              sasl.password: ${file:/run/secrets/kafka}
            """, environment: ["KAFKA_USER": "svc-upshift"], files: ["/run/secrets/kafka": "s3cr3t\n"])
        #expect(file.runtime.kafka.properties == ["sasl.username": "svc-upshift", "sasl.password": "s3cr3t"])
    }

    @Test func reportsEveryProblemWithItsPlaceAndNeverASecret() {
        let text = """
            application_id: upsell
            bootstrap_server: kafka:9092
            input_topics: [events]
            workflows: [shared.yaml]
            commit_interval: soon
            guarantee: maybe
            static_membership: yes please
            topics: { emial: x }
            kafka:
              sasl.password: ${env:MISSING_PASSWORD}
            """
        #expect(messages(text, environment: ["UPSHIFT_HTTP_PORT": "99999", "UPSHIFT_COLOUR": "blue"]) == [
            "/etc/upshift/upshift.yaml:2:1: error: unknown setting \"bootstrap_server\" (hint: did you mean \"bootstrap_servers\"?)",
            "/etc/upshift/upshift.yaml:8:11: error: topics: unknown topic \"emial\" (hint: did you mean \"email\"?)",
            "$UPSHIFT_COLOUR:1:1: error: no setting is called \"colour\"",
            "/etc/upshift/upshift.yaml:1:1: error: bootstrap_servers: missing (hint: set it in the file or as UPSHIFT_BOOTSTRAP_SERVERS)",
            "/etc/upshift/upshift.yaml:10:18: error: kafka.sasl.password: the environment variable MISSING_PASSWORD is not set",
            "/etc/upshift/upshift.yaml:6:12: error: guarantee: \"maybe\" is not one of exactly_once, at_least_once",
            "/etc/upshift/upshift.yaml:5:18: error: commit_interval: \"soon\" is not a duration (hint: such as 100ms, 30s or 5m)",
            "/etc/upshift/upshift.yaml:7:20: error: static_membership: \"yes please\" is not true or false",
            "$UPSHIFT_HTTP_PORT:1:1: error: http_port: \"99999\" is not a whole number from 0 to 65535",
        ])
    }
}
