import Testing
@testable import UpshiftRuntime

@Suite("Topic layout")
struct TopicLayoutTests {
    let layout = TopicLayout(partitions: ["events": 6, "billing": 6, "tickets": 4, "upshift.changelog": 6, "small.changelog": 3, "__consumer_offsets": 50])

    @Test func acceptsCoPartitionedInputsWithALargeEnoughChangelog() throws {
        try layout.verify(inputs: ["events", "billing"], changelog: "upshift.changelog")
    }

    @Test func refusesInputsWithDifferentPartitionCounts() {
        #expect(throws: ProcessorError.inputsNotCoPartitioned(partitions: ["billing": 6, "events": 6, "tickets": 4])) {
            try layout.verify(inputs: ["events", "billing", "tickets"], changelog: "upshift.changelog")
        }
    }

    @Test func matchesPatternsAgainstTheClusterTopicsButNotInternalOnes() throws {
        #expect(try layout.inputTopics(["^(events|billing)$", "^__.*"]) == ["billing", "events"])
        #expect(throws: ProcessorError.inputsNotCoPartitioned(partitions: ["billing": 6, "events": 6, "tickets": 4])) {
            try layout.verify(inputs: ["^[a-z]+$"], changelog: "upshift.changelog")
        }
    }

    @Test func namesAMissingInputChangelogOrControlTopic() {
        #expect(throws: ProcessorError.missingTopic("clicks", role: "input")) {
            try layout.verify(inputs: ["events", "clicks"], changelog: "upshift.changelog")
        }
        #expect(throws: ProcessorError.missingTopic("nowhere", role: "changelog")) {
            try layout.verify(inputs: ["events"], changelog: "nowhere")
        }
        #expect(throws: ProcessorError.missingTopic("upshift.control", role: "control")) {
            try layout.verify(inputs: ["events"], changelog: "upshift.changelog", control: "upshift.control")
        }
    }

    @Test func refusesAChangelogWithFewerPartitionsThanTheInputs() {
        #expect(throws: ProcessorError.changelogTooSmall(changelog: "small.changelog", partitions: 3, inputPartitions: 6)) {
            try layout.verify(inputs: ["events"], changelog: "small.changelog")
        }
        #expect(ProcessorError.changelogTooSmall(changelog: "small.changelog", partitions: 3, inputPartitions: 6).description
            == "the changelog small.changelog has 3 partitions but the inputs have 6; create it compacted with 6 partitions")
    }
}
