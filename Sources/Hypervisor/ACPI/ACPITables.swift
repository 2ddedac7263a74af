import CVMMCore

#if canImport(Glibc)
import Glibc
#endif

/// The ACPI tables a Linux guest needs on this machine, laid out as Cloud
/// Hypervisor does on x86_64: an RSDP at 0xa0000 pointing to an XSDT with
/// a hardware-reduced FADT (sleep control/status and reset registers at the
/// I/O port the power device serves), a MADT with every vCPU the VM may
/// have and the in-kernel IOAPIC, an MCFG for PCI's ECAM, and a DSDT with
/// COM1, pvpanic, the CMOS RTC, the power button and its Generic Event
/// Device, the vCPUs, the PCI host bridge and the S5 (soft-off) state; with
/// a virtual IOMMU, a VIOT naming what sits behind it.
struct ACPITables {
    /// The tables live from here up to the reset vector: 384 KiB, which a
    /// DSDT with 96 PCI segments' hotplug slots and every vCPU needs.
    static let rsdpAddress: UInt64 = 0xa0000
    static let tablesEnd = ResetVector.address
    static let sleepControlPort = UInt64(VMM_ACPI_SLEEP_PORT)
    static let resetValue = UInt8(VMM_ACPI_RESET_VALUE)
    static let localAPICAddress: UInt32 = 0xfee0_0000
    static let ioAPICAddress: UInt32 = 0xfec0_0000

    let cpus: CPUDescription
    let memoryBytes: UInt64
    /// PCI segments (`--platform num_pci_segments`).
    var pciSegments = 1
    /// Room for memory hotplug (`--memory hotplug_size`): with it, the
    /// DSDT has the memory hotplug devices.
    var hotplugBytes: UInt64 = 0
    /// The virtual IOMMU and its endpoints, if the VM has one.
    var viot: VIOTDescription?

    /// (guest address, bytes) for each table, RSDP first; throws if they
    /// do not fit below the reset vector.
    func build() throws(VMMError) -> [(address: UInt64, bytes: [UInt8])] {
        var next = Self.rsdpAddress + 64
        func place(_ bytes: [UInt8]) -> UInt64 {
            let at = next
            next = (next + UInt64(bytes.count) + 15) & ~15
            return at
        }
        let dsdt = self.dsdt()
        let dsdtAt = place(dsdt)
        let fadt = self.fadt(dsdt: dsdtAt)
        let fadtAt = place(fadt)
        let madt = self.madt()
        let madtAt = place(madt)
        let mcfg = PCIDescription(memoryBytes: memoryBytes, hotplugBytes: hotplugBytes, segments: pciSegments).mcfg()
        let mcfgAt = place(mcfg)
        let viot: [(address: UInt64, bytes: [UInt8])] = self.viot.map { description in
            let bytes = description.table()
            return [(place(bytes), bytes)]
        } ?? []
        let xsdt = Self.table("XSDT", revision: 1, body: ([fadtAt, madtAt, mcfgAt] + viot.map(\.address))
            .flatMap { AML.littleEndian($0, bytes: 8) })
        let xsdtAt = place(xsdt)
        guard next <= Self.tablesEnd else {
            throw .system(SystemError("the ACPI tables take \(next - Self.rsdpAddress) bytes, more than the \(Self.tablesEnd - Self.rsdpAddress) below the reset vector: give fewer vCPUs or PCI segments", errno: E2BIG))
        }
        return [(Self.rsdpAddress, Self.rsdp(xsdt: xsdtAt)), (dsdtAt, dsdt), (fadtAt, fadt), (madtAt, madt),
                (mcfgAt, mcfg), (xsdtAt, xsdt)] + viot
    }

    static func rsdp(xsdt: UInt64) -> [UInt8] {
        var bytes = Array("RSD PTR ".utf8) + [0] + oemID + [2] + [0, 0, 0, 0]
            + AML.littleEndian(36, bytes: 4) + AML.littleEndian(xsdt, bytes: 8) + [0, 0, 0, 0]
        bytes[8] = checksum(bytes[0..<20])
        bytes[32] = checksum(bytes[0..<36])
        return bytes
    }

    func dsdt() -> [UInt8] {
        let com1 = AML.device("COM1", [
            AML.name("_HID", AML.eisaID("PNP0501")),
            AML.name("_UID", AML.integer(0)),
            AML.name("_CRS", AML.resources([AML.ioPorts(base: 0x3f8, length: 8), AML.irq(4)])),
        ])
        let pvpanic = AML.device("PEVT", [
            AML.name("_HID", AML.string("QEMU0001")),
            AML.name("_CRS", AML.resources([AML.ioPorts(base: UInt16(VMM_PVPANIC_PORT), length: 1)])),
        ])
        // Ports only: this clock raises no alarm or update interrupts.
        let rtc = AML.device("RTC", [
            AML.name("_HID", AML.eisaID("PNP0B00")),
            AML.name("_CRS", AML.resources([AML.ioPorts(base: UInt16(VMM_RTC_PORT), length: UInt8(VMM_RTC_LEN))])),
        ])
        // Which slots gained or lose a device: PSCN selects each segment
        // and has its host bridge notify those slots' objects (1: check the
        // bus, 3: eject request), as Cloud Hypervisor's PCNT does.
        let hotplug = AML.device("PHPR", [
            AML.name("_HID", AML.eisaID("PNP0A06")),
            AML.name("_UID", AML.string("PCI Hotplug Controller")),
            AML.name("_CRS", AML.resources([AML.ioPorts(base: UInt16(VMM_PCI_HOTPLUG_PORT), length: UInt8(VMM_PCI_HOTPLUG_LEN))])),
            AML.ioRegion("PCST", port: UInt16(VMM_PCI_HOTPLUG_PORT), length: UInt16(VMM_PCI_HOTPLUG_LEN)),
            AML.dwordFields(region: "PCST", ["PCIU", "PCID", "PCEJ", "PSEG"]),
            AML.method("PSCN", arguments: 0, (0..<pciSegments).flatMap { segment in [
                AML.store(AML.integer(UInt64(segment)), Array("PSEG".utf8)),
                AML.call(AML.rootPath("_SB", PCIDescription.hostBridgeName(segment), "PCNT"), [Array("PCIU".utf8), Array("PCID".utf8)]),
            ] }),
        ])
        // Events the VMM raises, as Cloud Hypervisor does: a Generic Event
        // Device whose interrupt makes the guest run _EVT, which reads what
        // happened from the GED's port and notifies the power button or
        // scans for hotplug.
        let powerButton = AML.device("PWRB", [
            AML.name("_HID", AML.eisaID("PNP0C0C")),
            AML.name("_UID", AML.integer(0)),
        ])
        let ged = AML.device("GED", [
            AML.name("_HID", AML.string("ACPI0013")),
            AML.name("_UID", AML.integer(0)),
            AML.name("_CRS", AML.resources([AML.edgeInterrupt(UInt32(VMM_GED_GSI))])),
            AML.ioRegion("GDST", port: UInt16(VMM_GED_PORT), length: 1),
            AML.byteFields(region: "GDST", ["GDAT"]),
            AML.method("_EVT", arguments: 1, [
                AML.store(Array("GDAT".utf8), AML.local0),
                AML.ifAnyBit(AML.local0, UInt64(VMM_GED_POWER_BUTTON), [AML.notify(AML.rootPath("_SB", "PWRB"), 0x80)]),
                AML.ifAnyBit(AML.local0, UInt64(VMM_GED_PCI_HOTPLUG), [AML.rootPath("_SB", "PHPR", "PSCN")]),
                AML.ifAnyBit(AML.local0, UInt64(VMM_GED_CPU_HOTPLUG), [AML.rootPath("_SB", "CPUS", "CSCN")]),
            ] + (hotplugBytes > 0 ? [
                AML.ifAnyBit(AML.local0, UInt64(VMM_GED_MEMORY_HOTPLUG), [AML.rootPath("_SB", "MHPC", "MSCN")]),
            ] : [])),
        ])
        // SLP_TYP 5 for S5: the power device takes (5 << 2) | SLP_EN as power-off.
        let s5 = AML.name("_S5", AML.package([AML.integer(5), AML.integer(0), AML.integer(0), AML.integer(0)]))
        return Self.table("DSDT", revision: 6, body: AML.scope(root: "_SB", [com1, rtc, pvpanic, powerButton, hotplug, ged, cpus.container()]
            + (hotplugBytes > 0 ? [MemoryHotplugDescription().container()] : []) + PCIDescription(memoryBytes: memoryBytes, hotplugBytes: hotplugBytes, segments: pciSegments).devices()) + s5)
    }

    func fadt(dsdt: UInt64) -> [UInt8] {
        var body = [UInt8](repeating: 0, count: 276 - 36)
        func put(_ offset: Int, _ bytes: [UInt8]) { body.replaceSubrange(offset - 36..<offset - 36 + bytes.count, with: bytes) }
        put(40, AML.littleEndian(dsdt, bytes: 4))
        let hardwareReduced: UInt64 = 1 << 20, resetRegisterSupported: UInt64 = 1 << 10
        put(112, AML.littleEndian(hardwareReduced | resetRegisterSupported, bytes: 4))
        put(116, Self.ioRegister(Self.sleepControlPort))    // RESET_REG
        put(128, [Self.resetValue])                         // RESET_VALUE
        put(131, [5])                                       // FADT minor version (6.5)
        put(140, AML.littleEndian(dsdt, bytes: 8))          // X_DSDT
        put(244, Self.ioRegister(Self.sleepControlPort))    // SLEEP_CONTROL_REG
        put(256, Self.ioRegister(Self.sleepControlPort + 1)) // SLEEP_STATUS_REG
        put(268, Array("CLOUDHV\0".utf8))                   // hypervisor vendor identity
        return Self.table("FACP", revision: 6, body: body)
    }

    func madt() -> [UInt8] {
        var body = AML.littleEndian(UInt64(Self.localAPICAddress), bytes: 4) + AML.littleEndian(0, bytes: 4)
        body += cpus.madtEntries()
        body += [1, 12, 0, 0] + AML.littleEndian(UInt64(Self.ioAPICAddress), bytes: 4) + AML.littleEndian(0, bytes: 4)
        return Self.table("APIC", revision: 5, body: body)
    }

    /// Generic Address Structure: one byte in system I/O space.
    static func ioRegister(_ port: UInt64) -> [UInt8] { [1, 8, 0, 1] + AML.littleEndian(port, bytes: 8) }

    static let oemID = Array("CLOUDH".utf8)

    static func table(_ signature: String, revision: UInt8, body: [UInt8]) -> [UInt8] {
        var bytes = Array(signature.utf8) + AML.littleEndian(UInt64(36 + body.count), bytes: 4) + [revision, 0]
            + oemID + Array("CHSWIFT ".utf8) + AML.littleEndian(1, bytes: 4) + Array("CHSW".utf8)
            + AML.littleEndian(1, bytes: 4) + body
        bytes[9] = checksum(bytes[...])
        return bytes
    }

    static func checksum(_ bytes: ArraySlice<UInt8>) -> UInt8 {
        0 &- bytes.reduce(UInt8(0), &+)
    }
}
