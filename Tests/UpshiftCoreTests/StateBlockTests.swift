import Testing

@testable import UpshiftCore

@Suite("State block")
struct StateBlockTests {
    private func cell(_ first: Int64, _ second: Int64 = 0) -> StateBlock.Cell { StateBlock.Cell(first: first, second: second) }

    private func firsts(_ block: StateBlock, _ part: StateBlock.Part) -> [Int64] { block.records(part).map(\.first) }

    private func setWorkflow(_ index: Int, _ memory: WorkflowMemory.Cells?, in block: inout StateBlock) {
        let (position, found) = block.find(Int64(index), in: .workflows, size: WorkflowMemory.cellCount)
        block.setWorkflowCells(at: position, found: found, memory)
    }

    @Test func aPartThatGrowsMovesOnlyThePartsAfterIt() {
        var block = StateBlock(suppressions: 2, workflows: 1, distinct: [false, true])
        block.append(cell(7), to: .metric(0))
        block.append(cell(9), to: .metric(1))
        block.append(cell(1), to: block.recentMessages)
        block.insert(cell(5), at: block.range(.metric(0)).lowerBound, into: .metric(0))
        block.setValue(30, keyed: 3, in: .suppressions)
        #expect(firsts(block, block.recentMessages) == [1])
        #expect(firsts(block, .sent) == [])
        #expect(block.records(.suppressions) == [cell(3, 30)])
        #expect(firsts(block, .metric(0)) == [5, 7])
        #expect(firsts(block, .metric(1)) == [9])
        #expect(!block.isDistinct(.metric(0)) && block.isDistinct(.metric(1)), "the flags stay as parts move")
        #expect((block.metricCount, block.suppressionCount, block.workflowCount) == (2, 2, 1))
    }

    @Test func theTraitsNeverMoveAndAMessageIdMovesNothing() {
        var block = StateBlock(suppressions: 1, workflows: 1, distinct: [false])
        block.setTraitText(Array(#"{"plan":"starter"}"#.utf8))
        let traits = block.range(.traits)
        block.append(cell(7), to: .metric(0))
        block.setValue(30, keyed: 0, in: .suppressions)
        let metric = block.range(.metric(0))
        block.append(cell(1), to: block.recentMessages)
        block.append(cell(2), to: block.recentMessages)
        #expect(block.range(.traits) == traits)
        #expect(block.range(.metric(0)) == metric)
        #expect(block.range(block.recentMessages) == metric.upperBound..<metric.upperBound + 2)
        #expect(block.withTraitText { String(decoding: $0, as: UTF8.self) } == #"{"plan":"starter"}"#)
    }

    @Test func keyedRecordsStayInKeyOrderAndGoWhenCleared() {
        var block = StateBlock(suppressions: 4, workflows: 0, distinct: [])
        block.setValue(50, keyed: 5, in: .suppressions)
        block.setValue(10, keyed: 1, in: .suppressions)
        block.setValue(30, keyed: 3, in: .suppressions)
        block.setValue(31, keyed: 3, in: .suppressions)
        #expect(block.records(.suppressions) == [cell(1, 10), cell(3, 31), cell(5, 50)])
        #expect(block.value(keyed: 3, in: .suppressions) == 31)
        #expect(block.value(keyed: 4, in: .suppressions) == nil)
        block.setValue(nil, keyed: 1, in: .suppressions)
        block.setValue(nil, keyed: 2, in: .suppressions)
        #expect(block.records(.suppressions) == [cell(3, 31), cell(5, 50)])
    }

    @Test func aWorkflowMemoryAsItWasMadeTakesNoCells() {
        var block = StateBlock(suppressions: 0, workflows: 3, distinct: [false])
        var memory = WorkflowMemory()
        memory.scheduled = Timestamp(rawValue: 1_000)
        setWorkflow(2, memory.cells(index: 2), in: &block)
        setWorkflow(0, memory.cells(index: 0), in: &block)
        #expect(block.range(.workflows).count == 2 * WorkflowMemory.cellCount)
        #expect(block.workflowCells(1) == nil)
        #expect(block.workflowCells(2).map(WorkflowMemory.init) == memory)
        setWorkflow(0, nil, in: &block)
        #expect(block.range(.workflows).count == WorkflowMemory.cellCount)
    }

    @Test func traitTextIsKeptWholeAndChangesInPlaceOrGrows() {
        var block = StateBlock(suppressions: 0, workflows: 0, distinct: [false])
        block.append(cell(42), to: .metric(0))
        let text = { (block: StateBlock) in block.withTraitText { String(decoding: $0, as: UTF8.self) } }
        #expect(text(block) == "")
        block.setTraitText(Array(#"{"plan":"starter","n":1}"#.utf8))
        #expect(text(block) == #"{"plan":"starter","n":1}"#)
        block.setTraitText(Array(#"{"plan":"growth","n":1}"#.utf8))
        #expect(text(block) == #"{"plan":"growth","n":1}"#)
        #expect(block.range(.traits).count == 3, "a length cell and two of text")
        block.setTraitText(Array(#"{"plan":"enterprise","quota":{"api_calls":10000}}"#.utf8))
        #expect(text(block) == #"{"plan":"enterprise","quota":{"api_calls":10000}}"#)
        #expect(firsts(block, .metric(0)) == [42])
        block.setTraitText([])
        #expect(block.records(.traits).isEmpty)
    }

    @Test func limitsAreNoPartOfTheValue() {
        var read = StateBlock(suppressions: 0, workflows: 1, distinct: [])
        let fresh = read
        read.setValue(42, keyed: 0, in: .limits)
        #expect(read == fresh)
        #expect(read.hashValue == fresh.hashValue)
        read.forgetLimits()
        #expect(read.records(.limits).isEmpty)
    }

    @Test func removingExpiredRecordsKeepsTheRestInOrderAndAppendsInTheirPlace() {
        var block = StateBlock(suppressions: 0, workflows: 0, distinct: [false])
        for time: Int64 in [3, 1, 4, 1, 5] { block.append(cell(time), to: block.recentMessages) }
        block.append(cell(42), to: .metric(0))
        block.removeAll(from: block.recentMessages, where: { $0.first < 3 }, thenAppend: cell(9))
        #expect(firsts(block, block.recentMessages) == [3, 4, 5, 9])
        block.removeAll(from: block.recentMessages, where: { $0.first < 9 }, thenAppend: cell(10))
        #expect(firsts(block, block.recentMessages) == [9, 10])
        block.removeAll(from: block.recentMessages, where: { _ in false }, thenAppend: cell(11))
        #expect(firsts(block, block.recentMessages) == [9, 10, 11])
        #expect(firsts(block, .metric(0)) == [42])
    }

    @Test func aCopyIsNotChangedByTheOriginal() {
        var block = StateBlock(suppressions: 1, workflows: 0, distinct: [false])
        block.append(cell(1), to: .metric(0))
        let copy = block
        block.append(cell(2), to: .metric(0))
        block.setValue(6, keyed: 0, in: .suppressions)
        #expect(firsts(copy, .metric(0)) == [1])
        #expect(copy.records(.suppressions).isEmpty)
        #expect(block != copy)
    }
}
