import ArgumentParser
import Foundation
import Kafka

/// `upshift broker`: the embedded Kafka broker in the foreground, for kcat or any Kafka client.
struct BrokerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "broker",
        abstract: "Run an embedded Kafka broker (librdkafka's mock cluster) on loopback until interrupted.",
        discussion: """
            Prints the bootstrap servers on the first line of standard output. The broker keeps only \
            about the newest 5 MB of each partition and does not answer Admin CreateTopics: create \
            topics with --topic.
            """
    )

    @Option(help: "Number of brokers.")
    var brokers: Int = 1

    @Option(
        name: .customLong("topic"),
        help: ArgumentHelp("A topic to create, as name:partitions (repeatable).", valueName: "name:partitions"))
    var topics: [TopicSpec] = []

    func validate() throws {
        guard brokers > 0 else { throw ValidationError("--brokers must be at least 1, got \(brokers)") }
    }

    func run() throws {
        // Blocked before the broker's threads start, so that they inherit the mask and the
        // signal reaches sigwait below instead of killing the process mid-write.
        let termination = TerminationSignals()
        let cluster = try EmbeddedKafkaCluster(brokers: brokers)
        for topic in topics {
            try cluster.createTopic(topic.name, partitions: topic.partitions)
        }
        print(cluster.bootstrapServers)
        for topic in topics {
            print("topic \(topic.name) with \(topic.partitions) partition\(topic.partitions == 1 ? "" : "s")")
        }
        fflush(nil)
        termination.wait()
        cluster.stop()
    }
}

/// `name:partitions` from the command line.
struct TopicSpec: ExpressibleByArgument {
    var name: String
    var partitions: Int

    init?(argument: String) {
        let parts = argument.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 2, !parts[0].isEmpty, let partitions = Int(parts[1]), partitions > 0 else {
            return nil
        }
        name = String(parts[0])
        self.partitions = partitions
    }
}

/// SIGINT and SIGTERM, blocked for this thread and every thread it starts from now on, so that
/// ``wait()`` receives them.
struct TerminationSignals {
    private var signals = sigset_t()

    init() {
        sigemptyset(&signals)
        sigaddset(&signals, SIGINT)
        sigaddset(&signals, SIGTERM)
        pthread_sigmask(SIG_BLOCK, &signals, nil)
    }

    /// Blocks until one of the signals arrives.
    func wait() {
        var signals = signals
        var received: Int32 = 0
        sigwait(&signals, &received)
    }
}
