import Testing

@testable import UpshiftCore

@Suite("State block")
struct StateBlockTests {
    private func cell(_ first: Int64, _ second: Int64 = 0) -> StateBlock.Cell { StateBlock.Cell(first: first, second: second) }

    private func firsts(_ block: StateBlock, _ part: StateBlock.Part) -> [Int64] { block.records(part).map(\.first) }

    @Test func aPartThatGrowsMovesOnlyThePartsAfterIt() {
        var block = StateBlock(suppressions: 2, workflows: 1, distinct: [false, true])
        block.append(cell(7), to: .metric(0))
        block.append(cell(9), to: .metric(1))
        block.append(cell(1), to: .recentMessages)
        block.insert(cell(5), at: block.range(.metric(0)).lowerBound, into: .metric(0))
        #expect(firsts(block, .recentMessages) == [1])
        #expect(firsts(block, .sent) == [])
        #expect(block.records(.suppressions).map(SuppressionState.init) == [SuppressionState(), SuppressionState()])
        #expect(firsts(block, .metric(0)) == [5, 7])
        #expect(firsts(block, .metric(1)) == [9])
        #expect(!block.isDistinct(.metric(0)) && block.isDistinct(.metric(1)), "the flags stay as parts move")
        #expect(block.metricCount == 2)
    }

    @Test func removingExpiredRecordsKeepsTheRestInOrderAndAppendsInTheirPlace() {
        var block = StateBlock(suppressions: 0, workflows: 0, distinct: [false])
        for time: Int64 in [3, 1, 4, 1, 5] { block.append(cell(time), to: .recentMessages) }
        block.append(cell(42), to: .metric(0))
        block.removeAll(from: .recentMessages, where: { $0.first < 3 }, thenAppend: cell(9))
        #expect(firsts(block, .recentMessages) == [3, 4, 5, 9])
        block.removeAll(from: .recentMessages, where: { $0.first < 9 }, thenAppend: cell(10))
        #expect(firsts(block, .recentMessages) == [9, 10])
        block.removeAll(from: .recentMessages, where: { _ in false }, thenAppend: cell(11))
        #expect(firsts(block, .recentMessages) == [9, 10, 11])
        #expect(firsts(block, .metric(0)) == [42])
    }

    @Test func aCopyIsNotChangedByTheOriginal() {
        var block = StateBlock(suppressions: 1, workflows: 0, distinct: [false])
        block.append(cell(1), to: .metric(0))
        let copy = block
        block.append(cell(2), to: .metric(0))
        block[block.range(.suppressions).lowerBound] = cell(5, 6)
        #expect(firsts(copy, .metric(0)) == [1])
        #expect(copy.records(.suppressions).map(SuppressionState.init) == [SuppressionState()])
        #expect(block != copy)
    }
}
