import Testing
@testable import UpshiftCore

@Suite("Customer index")
struct CustomerIndexTests {
    /// The index beside a dictionary, through random inserts and removals: every id is found in
    /// the slot the dictionary says, and no removed id is found.
    @Test func findsWhatADictionaryFindsThroughInsertsAndRemovals() {
        var random = SplitMix(state: 11)
        var index = CustomerIndex()
        var model: [String: Int] = [:]
        var ids: [String] = []
        var live: [String] = []
        func slot(_ id: String) -> Int? { index.slot(hash: CustomerIndex.hash(id)) { ids[$0] == id } }
        for step in 0..<20_000 {
            if live.isEmpty || Int.random(in: 0..<3, using: &random) > 0 {
                let id = "c\(step)"
                ids.append(id)
                index.insert(hash: CustomerIndex.hash(id), slot: ids.count - 1)
                model[id] = ids.count - 1
                live.append(id)
            } else {
                let id = live.remove(at: Int.random(in: 0..<live.count, using: &random))
                index.remove(hash: CustomerIndex.hash(id), slot: model[id]!)
                model[id] = nil
            }
        }
        #expect(index.count == model.count)
        let misplaced = ids.filter { slot($0) != model[$0] }
        #expect(misplaced.isEmpty)
    }

    @Test func idsSharingAHashAreToldApartByTheirSlots() {
        var index = CustomerIndex()
        let ids = ["a", "b", "c"]
        for slot in ids.indices { index.insert(hash: 7, slot: slot) }
        index.remove(hash: 7, slot: 1)
        #expect(index.slot(hash: 7) { ids[$0] == "a" } == 0)
        #expect(index.slot(hash: 7) { ids[$0] == "b" } == nil)
        #expect(index.slot(hash: 7) { ids[$0] == "c" } == 2)
        #expect(index.count == 2)
    }
}
