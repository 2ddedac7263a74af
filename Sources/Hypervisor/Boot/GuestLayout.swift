import CVMMCore

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

    /// PCI's 32-bit MMIO window: the start of the hole, 640 MiB, as in Cloud Hypervisor.
    public static let pciMMIO32 = Range(start: hole32Start, size: 640 << 20)

    /// `segment`'s part of the 32-bit window: shared equally, as Cloud
    /// Hypervisor's default weights share it, in whole MiB.
    public static func pciMMIO32(segment: Int, of segments: Int) -> Range {
        let share = (pciMMIO32.size / UInt64(max(segments, 1))) & ~((1 << 20) - 1)
        return Range(start: pciMMIO32.start + UInt64(segment) * share, size: share)
    }
    /// ECAM (MMCONFIG), just above the 32-bit window: room for every PCI
    /// segment's bus 0, 1 MiB each; reserved in E820.
    public static let pciECAMArea = Range(start: 0xe800_0000, size: UInt64(PlatformConfig.maxPCISegments) * UInt64(VMM_PCI_ECAM_SIZE))

    /// Segment `segment`'s bus 0 ECAM window.
    public static func pciECAM(segment: Int) -> Range {
        Range(start: pciECAMArea.start + UInt64(segment) * UInt64(VMM_PCI_ECAM_SIZE), size: UInt64(VMM_PCI_ECAM_SIZE))
    }
    /// PCI's I/O port window, above the legacy ports.
    public static let pciIO = Range(start: 0x1000, size: 0x1_0000 - 0x1000)
    /// The hotplug controllers' fixed ports inside that window: no BAR goes there.
    static let fixedPortsInPCIIO = [
        Range(start: UInt64(VMM_MEM_HOTPLUG_PORT), size: UInt64(VMM_MEM_HOTPLUG_LEN)),
        Range(start: UInt64(VMM_PCI_HOTPLUG_PORT), size: UInt64(VMM_PCI_HOTPLUG_LEN)),
        Range(start: UInt64(VMM_CPU_HOTPLUG_PORT), size: UInt64(VMM_CPU_HOTPLUG_LEN)),
    ]
    /// Size of the 64-bit MMIO window above RAM.
    static let pciMMIO64Size: UInt64 = 64 << 30

    /// Where memory hotplug puts RAM (`hotplug_size`): from the first GiB
    /// boundary above RAM and 4 GiB; not in the memory map.
    public static func hotplugRAM(memoryBytes: UInt64, hotplugBytes: UInt64) -> Range {
        let ramEnd = ramRanges(memoryBytes: memoryBytes).map(\.end).max() ?? 0
        return Range(start: alignGiB(max(ramEnd, ram64Start)), size: hotplugBytes)
    }

    /// PCI's 64-bit MMIO window: the first GiB boundary above RAM, 4 GiB
    /// and the hotplug room; shared equally by the PCI segments, as Cloud
    /// Hypervisor's default weights share it. This is `segment`'s part.
    public static func pciMMIO64(memoryBytes: UInt64, hotplugBytes: UInt64 = 0, segment: Int = 0, of segments: Int = 1) -> Range {
        let start = alignGiB(hotplugRAM(memoryBytes: memoryBytes, hotplugBytes: hotplugBytes).end)
        let share = (pciMMIO64Size / UInt64(max(segments, 1))) & ~((1 << 20) - 1)
        return Range(start: start + UInt64(segment) * share, size: share)
    }

    private static func alignGiB(_ address: UInt64) -> UInt64 {
        let gib: UInt64 = 1 << 30
        return (address + gib - 1) & ~(gib - 1)
    }

    /// Ranges the memory map marks reserved: firmware-owned device memory.
    public static let reserved: [Range] = [pciECAMArea]

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

    /// The E820/PVH memory map: usable RAM, then the reserved ranges, with their E820 types.
    static func memoryMap(memoryBytes: UInt64) -> [(range: Range, type: UInt32)] {
        usableRAM(memoryBytes: memoryBytes).map { ($0, UInt32(VMM_E820_RAM)) }
            + reserved.map { ($0, UInt32(VMM_E820_RESERVED)) }
    }

    /// End of the RAM below the 32-bit hole.
    static func lowRAMEnd(memoryBytes: UInt64) -> UInt64 { min(memoryBytes, hole32Start) }
}
