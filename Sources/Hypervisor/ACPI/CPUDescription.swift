import CVMMCore

/// The vCPUs as the guest's ACPI sees them, as Cloud Hypervisor describes
/// them: every vCPU the VM may have (`--cpus max`) in the MADT, those not
/// running at boot disabled but online-capable; and in the DSDT a processor
/// container `\_SB_.CPUS` with one `ACPI0007` object per vCPU, whose _STA,
/// _EJ0 and the container's CSCN method use the CPU hotplug registers
/// (vmm_cpu_hotplug.h). vCPU N has ACPI processor UID N and APIC ID N.
struct CPUDescription {
    let boot: Int
    let max: Int

    /// `C000`, `C001`…: vCPU N's object, as Cloud Hypervisor names it.
    static func objectName(_ cpu: Int) -> String { "C" + hex3(cpu) }

    private static func hex3(_ n: Int) -> String {
        let digits = String(n, radix: 16, uppercase: true)
        return String(repeating: "0", count: 3 - digits.count) + digits
    }

    /// Processor Local APIC structures; `enabled` for those running at
    /// boot, online-capable for the rest (MADT revision 5: Linux counts
    /// them as possible CPUs only with that flag).
    static func localAPIC(_ cpu: Int, enabled: Bool) -> [UInt8] {
        [0, 8, UInt8(cpu), UInt8(cpu)] + AML.littleEndian(enabled ? 1 : 2, bytes: 4)
    }

    func madtEntries() -> [UInt8] {
        (0..<max).flatMap { Self.localAPIC($0, enabled: $0 < boot) }
    }

    /// `\_SB_.CPUS`, for the DSDT's `\_SB_` scope.
    func container() -> [UInt8] {
        let base = UInt64(VMM_CPU_HOTPLUG_PORT)
        let status = (0..<max).map { "P" + Self.hex3($0) }
        let events = (0..<max).map { "E" + Self.hex3($0) }
        let processors = (0..<max).map { cpu in
            AML.device(Self.objectName(cpu), [
                AML.name("_HID", AML.string("ACPI0007")),
                AML.name("_UID", AML.integer(UInt64(cpu))),
                AML.method("_STA", arguments: 0, [AML.returnValue(Array(status[cpu].utf8))]),
                // What the guest reads to bring a hot-added vCPU up: its APIC ID, enabled.
                AML.name("_MAT", AML.buffer(Self.localAPIC(cpu, enabled: true))),
            ] + (cpu == 0 ? [] : [
                AML.method("_EJ0", arguments: 1, [AML.store(AML.integer(UInt64(VMM_CPU_HOTPLUG_EJECT)), Array(status[cpu].utf8))]),
            ]))
        }
        // Which vCPUs arrived or are asked back: each object notified
        // (1: check it, 3: eject request), as PSCN does for PCI slots.
        let scan = AML.method("CSCN", arguments: 0, (1..<max).flatMap { cpu in [
            AML.store(Array(events[cpu].utf8), AML.local0),
            AML.ifAnyBit(AML.local0, UInt64(VMM_CPU_HOTPLUG_INSERTED), [AML.notify(AML.rootPath("_SB", "CPUS", Self.objectName(cpu)), 1)]),
            AML.ifAnyBit(AML.local0, UInt64(VMM_CPU_HOTPLUG_REMOVING), [AML.notify(AML.rootPath("_SB", "CPUS", Self.objectName(cpu)), 3)]),
        ] })
        return AML.device("CPUS", [
            AML.name("_HID", AML.string("ACPI0010")),
            AML.name("_CID", AML.eisaID("PNP0A05")),
            AML.ioRegion("CPST", port: UInt16(base + UInt64(VMM_CPU_HOTPLUG_STATUS)), length: UInt16(max)),
            AML.byteFields(region: "CPST", status),
            AML.ioRegion("CPEV", port: UInt16(base + UInt64(VMM_CPU_HOTPLUG_EVENTS)), length: UInt16(max)),
            AML.byteFields(region: "CPEV", events),
            scan,
        ] + processors)
    }
}
