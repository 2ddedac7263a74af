import CVMMCore

/// How the guest finds PCI through ACPI, as Cloud Hypervisor describes it:
/// an MCFG table with each segment's ECAM, a host bridge per segment
/// (`PCI0`, `PC01`…: PNP0A08, PCI Express, `_SEG` N) with its share of the
/// 32-bit and 64-bit windows in `_CRS` (segment 0 also conf1 and the I/O
/// ports), legacy INTx routing in `_PRT` and hotplug slots, and the ECAM range claimed as
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

    /// `PCI0`, then `PC01`…: segment N's host bridge, as Cloud Hypervisor names them.
    static func hostBridgeName(_ segment: Int) -> String {
        guard segment > 0 else { return "PCI0" }
        let hex = String(segment, radix: 16, uppercase: true)
        return "PC" + (hex.count < 2 ? "0" : "") + hex
    }

    /// `S01_` … `S1F_`: slot N's object under its host bridge.
    static func slotName(_ slot: Int) -> String {
        let hex = String(slot, radix: 16, uppercase: true)
        return "S" + (hex.count < 2 ? "0" : "") + hex
    }

    /// The DSDT's devices under `\_SB`: a host bridge per segment, each with
    /// its windows, its INTx routing and a hotplug slot object per slot.
    func devices() -> [[UInt8]] {
        let ecam = GuestLayout.pciECAM(segment: 0)
        var routes: [[UInt8]] = []
        for slot in 1..<Int(VMM_PCI_SLOTS) {
            for pin in 0..<4 {
                routes.append(AML.package([AML.integer(UInt64(slot) << 16 | 0xffff), AML.integer(UInt64(pin)),
                                           AML.integer(0), AML.integer(UInt64(Self.intxGSI(slot: slot, pin: pin)))]))
            }
        }
        // One routing table for every bridge: 96 copies would not fit below 1 MiB.
        let routing = AML.name("PRTT", AML.package(routes))
        let prt = AML.method("_PRT", arguments: 0, [AML.returnValue(AML.rootPath("_SB", "PRTT"))])
        let bridges = (0..<max(segments, 1)).map { segment in
            let mmio32 = GuestLayout.pciMMIO32(segment: segment, of: segments)
            let mmio64 = GuestLayout.pciMMIO64(memoryBytes: memoryBytes, hotplugBytes: hotplugBytes, segment: segment, of: segments)
            // conf1 and the I/O window are segment 0's alone, as in Cloud Hypervisor.
            let io = segment > 0 ? [] : [
                AML.ioPorts(base: UInt16(VMM_PCI_CONF1_PORT), length: 8),
                AML.wordAddress(type: .io, min: 0, max: 0x0cf7),
                AML.wordAddress(type: .io, min: 0x0d00, max: 0xffff),
            ]
            let crs = AML.resources([AML.wordAddress(type: .busNumber, min: 0, max: UInt16((ecam.size >> 20) - 1))] + io + [
                AML.dwordMemory(min: UInt32(mmio32.start), max: UInt32(mmio32.end - 1)),
                AML.qwordMemory(min: mmio64.start, max: mmio64.end - 1),
            ])
            // A hotplug slot object per slot, which the guest's acpiphp
            // manages; _EJ0 names its segment and slot in one write.
            let slots: [[UInt8]] = (1..<Int(VMM_PCI_SLOTS)).map { slot in
                AML.device(Self.slotName(slot), [
                    AML.name("_ADR", AML.integer(UInt64(slot) << 16)),
                    AML.name("_SUN", AML.integer(UInt64(slot))),
                    AML.method("_EJ0", arguments: 1, [AML.store(AML.integer(UInt64(segment) << 8 | UInt64(slot)),
                                                                AML.rootPath("_SB", "PHPR", "PCEJ"))]),
                ])
            }
            // PCNT(arrived, asked back): PSCN's bitmaps for this segment.
            let notify = AML.method("PCNT", arguments: 2, (1..<Int(VMM_PCI_SLOTS)).flatMap { slot in [
                AML.ifAnyBit(AML.arg0, 1 << UInt64(slot), [AML.notify(AML.nameSegment(Self.slotName(slot)), 1)]),
                AML.ifAnyBit(AML.arg1, 1 << UInt64(slot), [AML.notify(AML.nameSegment(Self.slotName(slot)), 3)]),
            ] })
            return AML.device(Self.hostBridgeName(segment), Self.hostBridge(segment: segment) + [
                AML.name("_CRS", crs), prt, notify,
            ] + slots)
        }
        let motherboard = AML.device("MBRD", [
            AML.name("_HID", AML.eisaID("PNP0C02")),
            AML.name("_UID", AML.integer(0)),
            AML.name("_CRS", AML.resources([AML.memory32Fixed(base: UInt32(ecam.start), length: UInt32(ecam.size) * UInt32(segments))]
                                           + AML.ioPorts(base: UInt16(VMM_CPU_HOTPLUG_PORT), count: Int(VMM_CPU_HOTPLUG_LEN)))),
        ])
        return [routing] + bridges + [motherboard]
    }
}
