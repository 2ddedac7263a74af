import CVMMCore

/// How the guest finds PCI through ACPI, as Cloud Hypervisor describes it:
/// an MCFG table with each segment's ECAM, a `PCI0` host bridge (PNP0A08,
/// PCI Express) with its windows in `_CRS` and legacy INTx routing in
/// `_PRT`, one more host bridge per further segment (`PC01`…, `_SEG` N,
/// its share of the 64-bit window), and the ECAM range claimed as
/// motherboard resources (PNP0C02), which Linux checks before it trusts
/// MMCONFIG, with the CPU hotplug ports, which no PCI device may then take.
struct PCIDescription {
    /// The IOAPIC pins `_PRT` spreads INTx over (16-23: free of ISA IRQs).
    static let intxGSIBase: UInt32 = 16
    static let intxGSICount: UInt32 = 8

    let memoryBytes: UInt64
    var hotplugBytes: UInt64 = 0
    let segments: Int

    /// The GSI of `pin` (0 = INTA) in `slot`: pins rotate across slots as on
    /// a physical board, so that neighbours do not all share one line.
    static func intxGSI(slot: Int, pin: Int) -> UInt32 {
        intxGSIBase + UInt32((slot + pin) % Int(intxGSICount))
    }

    func mcfg() -> [UInt8] {
        let entries = (0..<segments).flatMap { segment in
            let ecam = GuestLayout.pciECAM(segment: segment)
            return AML.littleEndian(ecam.start, bytes: 8) + AML.littleEndian(UInt64(segment), bytes: 2)
                + [0, UInt8((ecam.size >> 20) - 1)] + [0, 0, 0, 0]
        }
        return ACPITables.table("MCFG", revision: 1, body: [UInt8](repeating: 0, count: 8) + entries)
    }

    /// What names a segment's host bridge: PCI Express, bus 0 of `segment`.
    private static func hostBridge(segment: Int) -> [[UInt8]] {
        [
            AML.name("_HID", AML.eisaID("PNP0A08")),
            AML.name("_CID", AML.eisaID("PNP0A03")),
            AML.name("_ADR", AML.integer(0)),
            AML.name("_SEG", AML.integer(UInt64(segment))),
            AML.name("_UID", AML.integer(UInt64(segment))),
            AML.name("_BBN", AML.integer(0)),
        ]
    }

    /// `PC01`…: segment N's host bridge, as Cloud Hypervisor names it.
    static func hostBridgeName(_ segment: Int) -> String {
        let hex = String(segment, radix: 16, uppercase: true)
        return "PC" + (hex.count < 2 ? "0" : "") + hex
    }

    /// `S01_` … `S1F_`: slot N's object under PCI0.
    static func slotName(_ slot: Int) -> String {
        let hex = String(slot, radix: 16, uppercase: true)
        return "S" + (hex.count < 2 ? "0" : "") + hex
    }

    /// The DSDT's devices under `\_SB`.
    func devices() -> [[UInt8]] {
        let mmio32 = GuestLayout.pciMMIO32, mmio64 = GuestLayout.pciMMIO64(memoryBytes: memoryBytes, hotplugBytes: hotplugBytes, of: segments)
        let ecam = GuestLayout.pciECAM(segment: 0)
        let crs = AML.resources([
            AML.wordAddress(type: .busNumber, min: 0, max: UInt16((ecam.size >> 20) - 1)),
            AML.ioPorts(base: UInt16(VMM_PCI_CONF1_PORT), length: 8),
            AML.wordAddress(type: .io, min: 0, max: 0x0cf7),
            AML.wordAddress(type: .io, min: 0x0d00, max: 0xffff),
            AML.dwordMemory(min: UInt32(mmio32.start), max: UInt32(mmio32.end - 1)),
            AML.qwordMemory(min: mmio64.start, max: mmio64.end - 1),
        ])
        var routes: [[UInt8]] = []
        for slot in 1..<Int(VMM_PCI_SLOTS) {
            for pin in 0..<4 {
                routes.append(AML.package([AML.integer(UInt64(slot) << 16 | 0xffff), AML.integer(UInt64(pin)),
                                           AML.integer(0), AML.integer(UInt64(Self.intxGSI(slot: slot, pin: pin)))]))
            }
        }
        // A hotplug slot object per slot: the guest's acpiphp manages them.
        let slots: [[UInt8]] = (1..<Int(VMM_PCI_SLOTS)).map { slot in
            AML.device(Self.slotName(slot), [
                AML.name("_ADR", AML.integer(UInt64(slot) << 16)),
                AML.name("_SUN", AML.integer(UInt64(slot))),
                AML.method("_EJ0", arguments: 1, [AML.store(AML.integer(1 << UInt64(slot)), AML.rootPath("_SB", "PHPR", "B0EJ"))]),
            ])
        }
        let pci0 = AML.device("PCI0", Self.hostBridge(segment: 0) + [
            AML.name("_CRS", crs),
            AML.name("_PRT", AML.package(routes)),
        ] + slots)
        // The other segments: a bus with its host bridge alone, no I/O or
        // 32-bit window and no hotplug slots until a device can go there.
        let others = (1..<max(segments, 1)).map { segment in
            let window = GuestLayout.pciMMIO64(memoryBytes: memoryBytes, hotplugBytes: hotplugBytes, segment: segment, of: segments)
            return AML.device(Self.hostBridgeName(segment), Self.hostBridge(segment: segment) + [
                AML.name("_CRS", AML.resources([
                    AML.wordAddress(type: .busNumber, min: 0, max: 0),
                    AML.qwordMemory(min: window.start, max: window.end - 1),
                ])),
            ])
        }
        let motherboard = AML.device("MBRD", [
            AML.name("_HID", AML.eisaID("PNP0C02")),
            AML.name("_UID", AML.integer(0)),
            AML.name("_CRS", AML.resources([AML.memory32Fixed(base: UInt32(ecam.start), length: UInt32(ecam.size) * UInt32(segments))]
                                           + AML.ioPorts(base: UInt16(VMM_CPU_HOTPLUG_PORT), count: Int(VMM_CPU_HOTPLUG_LEN)))),
        ])
        return [pci0] + others + [motherboard]
    }
}
