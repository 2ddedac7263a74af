import CVMMCore

/// Memory hotplug as the guest's ACPI sees it, as Cloud Hypervisor's ACPI
/// hotplug does: a container `\_SB_.MHPC` with one memory device (PNP0C80)
/// per hotplug slot, `M000`…, whose _STA and _CRS read the slot's registers
/// (vmm_mem_hotplug.h), and an MSCN method that the GED runs to notify the
/// slots that gained RAM. Only in a VM with `hotplug_size`.
struct MemoryHotplugDescription {
    /// `\_SB_.MHPC`, for the DSDT's `\_SB_` scope.
    func container() -> [UInt8] {
        let base = UInt16(VMM_MEM_HOTPLUG_PORT)
        let slots = 0..<Int(VMM_MEM_HOTPLUG_SLOTS)
        func name(_ prefix: String, _ slot: Int) -> String { prefix + String(slot, radix: 16, uppercase: true) }
        let registers = slots.flatMap { slot in ["BL0", "BH0", "LL0", "LH0"].map { name($0, slot) } }
        let devices = slots.map { slot in
            // A QWordMemory descriptor filled from the registers: minimum at
            // byte 14, maximum at 22, length at 38.
            AML.device(name("M00", slot), [
                AML.name("_HID", AML.eisaID("PNP0C80")),
                AML.name("_UID", AML.integer(UInt64(slot))),
                AML.method("_STA", arguments: 0, [AML.returnValue(Array(name("MS0", slot).utf8))]),
                AML.method("_CRS", arguments: 0, [
                    AML.name("MR64", AML.resources([AML.qwordMemory(min: 0, max: 0)])),
                    AML.createQWordField("MR64", 14, "MINL"),
                    AML.createQWordField("MR64", 22, "MAXL"),
                    AML.createQWordField("MR64", 38, "LENL"),
                    AML.or(AML.shiftLeft(Array(name("BH0", slot).utf8), 32), Array(name("BL0", slot).utf8), into: Array("MINL".utf8)),
                    AML.or(AML.shiftLeft(Array(name("LH0", slot).utf8), 32), Array(name("LL0", slot).utf8), into: Array("LENL".utf8)),
                    AML.subtract(AML.add(Array("MINL".utf8), Array("LENL".utf8)), AML.integer(1), into: Array("MAXL".utf8)),
                    AML.returnValue(Array("MR64".utf8)),
                ]),
            ])
        }
        let scan = AML.method("MSCN", arguments: 0, slots.flatMap { slot in [
            AML.store(Array(name("ME0", slot).utf8), AML.local0),
            AML.ifAnyBit(AML.local0, UInt64(VMM_MEM_HOTPLUG_INSERTED), [AML.notify(AML.rootPath("_SB", "MHPC", name("M00", slot)), 1)]),
        ] })
        return AML.device("MHPC", [
            AML.name("_HID", AML.eisaID("PNP0A06")),
            AML.name("_UID", AML.string("Memory Hotplug Controller")),
            AML.name("_CRS", AML.resources(AML.ioPorts(base: base, count: Int(VMM_MEM_HOTPLUG_LEN)))),
            AML.ioRegion("MHRG", port: base, length: UInt16(16 * slots.count)),
            AML.dwordFields(region: "MHRG", registers),
            AML.ioRegion("MHST", port: base + UInt16(VMM_MEM_HOTPLUG_STATUS), length: UInt16(slots.count)),
            AML.byteFields(region: "MHST", slots.map { name("MS0", $0) }),
            AML.ioRegion("MHEV", port: base + UInt16(VMM_MEM_HOTPLUG_EVENTS), length: UInt16(slots.count)),
            AML.byteFields(region: "MHEV", slots.map { name("ME0", $0) }),
            scan,
        ] + devices)
    }
}
