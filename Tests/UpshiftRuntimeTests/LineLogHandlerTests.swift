import Foundation
import Logging
import Testing
import UpshiftRuntime

@Suite("Log lines")
struct LineLogHandlerTests {
    @Test func writesOneJSONObjectPerEventWithMetadataAsFields() {
        let lines = LogLines(format: .json, clock: { Date(timeIntervalSince1970: 1_780_000_000.25) })
        var logger = lines.logger
        logger[metadataKey: "instance"] = "pod-0"
        logger.info("restored", metadata: ["partition": "3", "duration": "0.2 seconds", "message": "not a field"])
        #expect(lines.all == [
            #"{"time":"2026-05-28T20:26:40.250Z","level":"info","logger":"upshift","message":"restored","duration":"0.2 seconds","instance":"pod-0","partition":"3"}"#
        ])
    }

    @Test func writesShortTextLinesForTerminalsAndNothingBelowInfo() {
        let lines = LogLines(format: .text)
        var logger = lines.logger
        logger[metadataKey: "instance"] = "pod-0"
        logger.warning("brokers down")
        logger.debug("one per record")
        #expect(lines.all == ["brokers down (instance=pod-0)"])
    }
}
