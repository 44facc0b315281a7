/// Why a ``StreamProcessor`` cannot start or stopped, with what to do about it. Kafka's own
/// failures arrive as `KafkaError` instead.
public enum ProcessorError: Error, Sendable, Hashable, CustomStringConvertible {
    /// Input topics with different partition counts: a customer's events would land in different
    /// partition numbers, and so in different state stores.
    case inputsNotCoPartitioned(partitions: [String: Int])
    /// A configured input topic or the changelog does not exist.
    case missingTopic(String, role: String)
    /// The changelog has fewer partitions than the inputs, so some tasks would have no store.
    case changelogTooSmall(changelog: String, partitions: Int, inputPartitions: Int)
    /// A shutdown could not commit and leave the group in time; the open transaction is left for
    /// the broker to abort, and its records will be read again.
    case shutdownTimedOut(after: Duration)

    public var description: String {
        switch self {
        case .inputsNotCoPartitioned(let partitions):
            let counts = partitions.sorted { $0.key < $1.key }.map { "\($0.key) has \($0.value)" }.joined(separator: ", ")
            return "input topics are not co-partitioned: \(counts). Upshift keeps a customer's state in the partition "
                + "their id hashes to, so every input topic needs the same partition count and the customer id as key; "
                + "repartition the inputs into topics of one size"
        case .missingTopic(let topic, let role):
            return "the \(role) topic \(topic) does not exist; create it (deploy/ has the topic-init step) or fix its name in the configuration"
        case .changelogTooSmall(let changelog, let partitions, let inputPartitions):
            return "the changelog \(changelog) has \(partitions) partitions but the inputs have \(inputPartitions); "
                + "create it compacted with \(inputPartitions) partitions"
        case .shutdownTimedOut(let after):
            return "shutdown did not finish within \(after): the open transaction is left to the broker to abort and "
                + "its input will be read again; check that the brokers are reachable"
        }
    }
}
