/// Where things live in guest-physical memory on x86_64, following Cloud
/// Hypervisor's layout so that guests see the machine they expect.
public enum GuestLayout {
    /// Boot GDT for the PVH entry (4 entries).
    static let gdtAddress: UInt64 = 0x500
    static let pvhStartInfoAddress: UInt64 = 0x6000
    static let pvhModlistAddress: UInt64 = 0x6040
    static let pvhMemmapAddress: UInt64 = 0x7000
    static let pvhMemmapMaxEntries = 128
    static let cmdlineAddress: UInt64 = 0x20000
    /// End of usable low memory: the EBDA and the BIOS area follow.
    static let ebdaStart: UInt64 = 0x9fc00
    /// Kernels load at or above 1 MiB.
    public static let highRAMStart: UInt64 = 0x10_0000
    /// RAM stops here below 4 GiB; the gap is for devices (PCI, LAPIC, IOAPIC).
    public static let hole32Start: UInt64 = 0xc000_0000
    /// RAM that does not fit below the hole resumes at 4 GiB.
    public static let ram64Start: UInt64 = 1 << 32

    public struct Range: Equatable, Sendable {
        public let start: UInt64
        public let size: UInt64
        public var end: UInt64 { start + size }
    }

    /// The RAM slots for `memoryBytes` of guest memory.
    public static func ramRanges(memoryBytes: UInt64) -> [Range] {
        let low = min(memoryBytes, hole32Start)
        var ranges = [Range(start: 0, size: low)]
        if memoryBytes > low {
            ranges.append(Range(start: ram64Start, size: memoryBytes - low))
        }
        return ranges
    }

    /// The RAM a guest may use, as the E820/PVH memory map tells it.
    public static func usableRAM(memoryBytes: UInt64) -> [Range] {
        var result: [Range] = []
        for range in ramRanges(memoryBytes: memoryBytes) {
            if range.start == 0 {
                result.append(Range(start: 0, size: min(range.size, ebdaStart)))
                if range.end > highRAMStart {
                    result.append(Range(start: highRAMStart, size: range.end - highRAMStart))
                }
            } else {
                result.append(range)
            }
        }
        return result
    }

    /// End of the RAM below the 32-bit hole.
    static func lowRAMEnd(memoryBytes: UInt64) -> UInt64 { min(memoryBytes, hole32Start) }
}
