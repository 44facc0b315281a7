import Foundation

/// The partition counts of the topics a processor reads and keeps state in, checked before it
/// processes anything: a customer's events must all land in the same partition number, whose
/// task owns the customer's state and writes it to the changelog partition of that number.
struct TopicLayout {
    /// Partition counts by topic name, from the cluster's metadata.
    var partitions: [String: Int]

    /// The existing topics that `inputs` name, a name starting with `^` being a pattern.
    func inputTopics(_ inputs: [String]) throws(ProcessorError) -> [String] {
        var topics: Set<String> = []
        for input in inputs {
            if input.hasPrefix("^") {
                topics.formUnion(partitions.keys.filter { !$0.hasPrefix("__") && $0.range(of: input, options: .regularExpression) != nil })
            } else {
                guard partitions[input] != nil else { throw .missingTopic(input, role: "input") }
                topics.insert(input)
            }
        }
        return topics.sorted()
    }

    /// Throws unless the input topics share one partition count, the changelog has at least as
    /// many, and the control topic exists.
    func verify(inputs: [String], changelog: String, control: String? = nil) throws(ProcessorError) {
        if let control, partitions[control] == nil { throw .missingTopic(control, role: "control") }
        let topics = try inputTopics(inputs)
        let counts = Dictionary(uniqueKeysWithValues: topics.map { ($0, partitions[$0]!) })
        guard Set(counts.values).count <= 1 else { throw .inputsNotCoPartitioned(partitions: counts) }
        guard let inputPartitions = counts.values.first else { return }
        guard let changelogPartitions = partitions[changelog] else { throw .missingTopic(changelog, role: "changelog") }
        guard changelogPartitions >= inputPartitions else {
            throw .changelogTooSmall(changelog: changelog, partitions: changelogPartitions, inputPartitions: inputPartitions)
        }
    }
}
