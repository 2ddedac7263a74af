/// Where a function sits: a PCI segment and a slot on its bus 0 (function
/// 0), written as Cloud Hypervisor writes it, `0001:00:02.0`.
struct PCIAddress: Hashable, Sendable, CustomStringConvertible {
    let segment: Int
    let slot: Int

    var description: String { Self.hex(segment, digits: 4) + ":00:" + Self.hex(slot, digits: 2) + ".0" }

    private static func hex(_ value: Int, digits: Int) -> String {
        let text = String(value, radix: 16)
        return String(repeating: "0", count: max(digits - text.count, 0)) + text
    }
}
