/// Customer ids to slots, for ``StreamEngine``: an open-addressing table of (hash, slot) pairs,
/// probed linearly and kept at most half full. A hash that matches is confirmed by the id.
///
/// A lookup reads one entry and then the slot it names, whose state holds the id that confirms
/// it. A `Dictionary` of ids reads a bitmap, a key and a value, each in another part of memory:
/// with 100,000 customers each of those reads is a cache miss, on every event. Hashes come from
/// the standard library's per-process seeded `Hasher`, so crafted ids cannot pile into one run.
struct CustomerIndex: Sendable {
    /// Eight bytes: the hash's low half, which holds every bit a table of up to 2^32 entries
    /// takes its positions from, and the slot.
    private struct Entry: Sendable {
        var hash: UInt32 = 0
        /// -1: empty.
        var slot: Int32 = -1

        init() {}

        init(hash: UInt64, slot: Int) {
            self.hash = UInt32(truncatingIfNeeded: hash)
            self.slot = Int32(slot)
        }
    }

    private var entries = Array(repeating: Entry(), count: 16)
    private(set) var count = 0

    init() {}

    static func hash(_ customerID: String) -> UInt64 {
        var hasher = Hasher()
        hasher.combine(customerID)
        return UInt64(UInt(bitPattern: hasher.finalize()))
    }

    /// The slot whose hash is `hash` and for which `isCustomer` says yes, if any.
    func slot(hash: UInt64, where isCustomer: (Int) -> Bool) -> Int? {
        var position = home(hash)
        while entries[position].slot >= 0 {
            if entries[position].hash == UInt32(truncatingIfNeeded: hash), isCustomer(Int(entries[position].slot)) { return Int(entries[position].slot) }
            position = (position + 1) & mask
        }
        return nil
    }

    /// The first slot whose hash is `hash`, unconfirmed: a hint of where the customer may be.
    func firstSlot(hash: UInt64) -> Int? {
        var position = home(hash)
        while entries[position].slot >= 0 {
            if entries[position].hash == UInt32(truncatingIfNeeded: hash) { return Int(entries[position].slot) }
            position = (position + 1) & mask
        }
        return nil
    }

    /// Adds a customer not in the index.
    mutating func insert(hash: UInt64, slot: Int) {
        if (count + 1) * 2 > entries.count { grow() }
        place(Entry(hash: hash, slot: slot))
        count += 1
    }

    /// Removes the entry of `slot`, moving later entries of its run back so that no lookup stops
    /// short at the hole (backward-shift deletion: no tombstones to clean up).
    mutating func remove(hash: UInt64, slot: Int) {
        var hole = home(hash)
        while entries[hole].slot != Int32(slot) {
            guard entries[hole].slot >= 0 else { return }
            hole = (hole + 1) & mask
        }
        var next = (hole + 1) & mask
        while entries[next].slot >= 0 {
            // An entry may fill the hole unless its home lies after the hole, up to itself.
            if (next - home(UInt64(entries[next].hash))) & mask >= (next - hole) & mask {
                entries[hole] = entries[next]
                hole = next
            }
            next = (next + 1) & mask
        }
        entries[hole] = Entry()
        count -= 1
    }

    private var mask: Int { entries.count - 1 }

    private func home(_ hash: UInt64) -> Int { Int(truncatingIfNeeded: hash) & mask }

    private mutating func place(_ entry: Entry) {
        var position = home(UInt64(entry.hash))
        while entries[position].slot >= 0 { position = (position + 1) & mask }
        entries[position] = entry
    }

    private mutating func grow() {
        let old = entries
        entries = Array(repeating: Entry(), count: old.count * 2)
        for entry in old where entry.slot >= 0 { place(entry) }
    }
}
