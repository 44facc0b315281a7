import Kafka
import Testing
@testable import UpshiftCore
@testable import UpshiftRuntime

@Suite("Output records")
struct OutputRecordsTests {
    let records = OutputRecords(topics: OutputTopics(), source: "upshift/demo")

    func output(_ kind: Output.Kind) -> Output {
        var output = Output(
            kind: kind, decisionID: "83915746397ea60c", customerID: "customer-27",
            eventTime: ISO8601.parse("2026-03-25T12:57:36Z")!, decisionTime: ISO8601.parse("2026-03-25T12:57:36.250Z")!)
        output.workflowID = "post-delivery-warranty"
        output.workflowVersion = 1
        output.step = "steps[1]"
        output.variant = "b"
        output.channel = .push
        output.template = "accessory-bundle"
        return output
    }

    func headers(_ record: ProducerRecord) -> [String] {
        record.headers.map { "\($0.key)=\(String(decoding: $0.value ?? [], as: UTF8.self))" }
    }

    @Test func anOfferGoesToItsChannelKeyedByCustomerWithDecisionWorkflowAndCloudEventsHeaders() {
        let record = records.record(for: output(.offer))
        #expect(record.topic == "upshift.offers.push")
        #expect(record.key == Array("customer-27".utf8))
        #expect(record.value == Array(output(.offer).jsonLine.utf8))
        #expect(record.timestamp == ISO8601.parse("2026-03-25T12:57:36.250Z")!.rawValue)
        #expect(headers(record) == [
            "upshift_decision_id=83915746397ea60c", "ce_specversion=1.0", "ce_id=83915746397ea60c", "ce_type=io.upshift.offer",
            "ce_source=upshift/demo", "ce_time=2026-03-25T12:57:36.250Z", "upshift_workflow_id=post-delivery-warranty",
            "upshift_workflow_version=1",
        ])
    }

    @Test func eachKindHasItsTopicAndCloudEventsType() {
        let kinds: [Output.Kind] = [.task, .suppression, .holdout, .exit, .conversion, .guardrail, .pause, .lateEvent]
        #expect(kinds.map { records.record(for: output($0)).topic } == [
            "upshift.tasks.customer_success", "upshift.suppressions", "upshift.holdouts", "upshift.outcomes", "upshift.outcomes",
            "upshift.outcomes", "upshift.control", "upshift.dead-letter",
        ])
        #expect(kinds.map { headers(records.record(for: output($0)))[3] } == [
            "ce_type=io.upshift.task", "ce_type=io.upshift.suppression", "ce_type=io.upshift.holdout", "ce_type=io.upshift.exit",
            "ce_type=io.upshift.conversion", "ce_type=io.upshift.guardrail", "ce_type=io.upshift.pause", "ce_type=io.upshift.late_event",
        ])
    }

    @Test func aPauseIsKeyedByTheArmItStopsSoThatCompactionKeepsOnePerArm() {
        #expect(records.record(for: output(.pause)).key == Array("pause/post-delivery-warranty/1/b".utf8))
    }

    @Test func anOutputWithoutAWorkflowHasNoWorkflowHeaders() {
        var late = output(.lateEvent)
        late.workflowID = nil
        late.workflowVersion = nil
        #expect(headers(records.record(for: late)).map { String($0.prefix { $0 != "=" }) } == [
            "upshift_decision_id", "ce_specversion", "ce_id", "ce_type", "ce_source", "ce_time",
        ])
    }
}
