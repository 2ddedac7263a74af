import CVMMCore

#if canImport(Glibc)
import Glibc
#endif

/// The hotplug controllers the VMM announces through, each a register
/// block the guest's ACPI methods read: PCI slots on every segment, vCPUs,
/// and with `hotplug_size` memory. An eject by the guest (an _EJ0) makes
/// `ejectFD` readable for the VMM thread; the news reaches the guest as a
/// GED event of the platform's.
final class HotplugControllers {
    private let vm: VirtualMachine
    private let platform: Platform
    private let hotplug: OpaquePointer
    private let cpuHotplug: OpaquePointer
    /// With `hotplug_size` only, as the DSDT's memory devices.
    private let memoryHotplug: OpaquePointer?
    /// Readable when the guest ejected a slot or a vCPU (an _EJ0), for the VMM thread.
    private let eject: OwnedDescriptor
    var ejectFD: Int32 { eject.raw }
    /// PCI segments, each with its hotplug slots.
    private let segments: Int

    /// `vcpus` run from boot.
    init(vm: VirtualMachine, platform: Platform, vcpus: Int, pciSegments: Int) throws(VMMError) {
        self.vm = vm
        self.platform = platform
        segments = pciSegments
        do {
            eject = try OwnedDescriptor(eventfd: "PCI hotplug", nonBlocking: true)
        } catch {
            throw .system(error)
        }
        let ejectFD = eject.raw
        var pci: OpaquePointer?, cpu: OpaquePointer?, memory: OpaquePointer?
        var claimed: [UInt64] = []
        func claim(_ port: Int32, _ length: Int32, _ handler: vmm_io_fn, _ device: OpaquePointer) throws(VMMError) {
            try vm.registerPIO(base: UInt64(port), length: UInt64(length), handler: handler, opaque: UnsafeMutableRawPointer(device))
            claimed.append(UInt64(port))
        }
        do throws(VMMError) {
            var r = vmm_pci_hotplug_create(ejectFD, UInt32(pciSegments), &pci)
            guard r == 0, let pci else { throw .system(SystemError("create the PCI hotplug registers", returned: r)) }
            try claim(VMM_PCI_HOTPLUG_PORT, VMM_PCI_HOTPLUG_LEN, vmm_pci_hotplug_io, pci)
            r = vmm_cpu_hotplug_create(UInt32(vcpus), ejectFD, &cpu)
            guard r == 0, let cpu else { throw .system(SystemError("create the CPU hotplug registers", returned: r)) }
            try claim(VMM_CPU_HOTPLUG_PORT, VMM_CPU_HOTPLUG_LEN, vmm_cpu_hotplug_io, cpu)
            if vm.hotplugBytes > 0 {
                r = vmm_mem_hotplug_create(&memory)
                guard r == 0, let memory else { throw .system(SystemError("create the memory hotplug registers", returned: r)) }
                try claim(VMM_MEM_HOTPLUG_PORT, VMM_MEM_HOTPLUG_LEN, vmm_mem_hotplug_io, memory)
            }
        } catch {
            // Undone in reverse: the ports given back, the controllers freed.
            for port in claimed.reversed() { _ = vmm_bus_unregister(vm.pioBus, port) }
            vmm_mem_hotplug_destroy(memory)
            vmm_cpu_hotplug_destroy(cpu)
            vmm_pci_hotplug_destroy(pci)
            throw error
        }
        hotplug = pci!
        cpuHotplug = cpu!
        memoryHotplug = memory
    }

    /// Runs once the vCPU threads are joined: no handler can be running.
    deinit {
        vmm_pci_hotplug_destroy(hotplug)
        vmm_cpu_hotplug_destroy(cpuHotplug)
        vmm_mem_hotplug_destroy(memoryHotplug)
    }

    /// Tells the guest that the slot at `address` gained a device
    /// (`arrived`) or that the VMM wants it back; the guest answers a
    /// removal with its _EJ0.
    func announce(_ address: PCIAddress, arrived: Bool) throws(VMMError) {
        vmm_pci_hotplug_announce(hotplug, UInt32(address.segment), UInt32(address.slot), arrived)
        try notify(UInt8(VMM_GED_PCI_HOTPLUG))
    }

    /// Takes back an arrival at `address` that the guest was not notified of.
    func withdraw(_ address: PCIAddress) {
        vmm_pci_hotplug_withdraw(hotplug, UInt32(address.segment), UInt32(address.slot))
    }

    /// Takes back an arrival of vCPUs the guest was not notified of: `new`
    /// ones absent again, `leaving` ones (re-announced while being asked
    /// back) asked back still.
    func withdraw(vcpus new: [Int], leaving: [Int]) {
        for index in new { vmm_cpu_hotplug_withdraw(cpuHotplug, UInt32(index)) }
        for index in leaving { vmm_cpu_hotplug_announce(cpuHotplug, UInt32(index), false) }
    }

    /// Empties a memory slot whose arrival the guest was not notified of.
    func withdraw(memorySlot slot: Int) { vmm_mem_hotplug_withdraw(memoryHotplug, UInt32(slot)) }

    /// Tells the guest that vCPUs arrived (present from now on) or that the
    /// VMM wants them back; the guest offlines each and answers with its _EJ0.
    func announce(vcpus: [Int], arrived: Bool) throws(VMMError) {
        guard !vcpus.isEmpty else { return }
        for index in vcpus { vmm_cpu_hotplug_announce(cpuHotplug, UInt32(index), arrived) }
        try notify(UInt8(VMM_GED_CPU_HOTPLUG))
    }

    /// Tells the guest that RAM [base, base+size) arrived in hotplug `slot`;
    /// the guest adds it (and onlines it, or its userspace does).
    func announce(memorySlot slot: Int, base: UInt64, size: UInt64) throws(VMMError) {
        let r = vmm_mem_hotplug_announce(memoryHotplug, UInt32(slot), base, size)
        guard r == 0 else { throw .system(SystemError("announce memory hotplug slot \(slot)", returned: r)) }
        try notify(UInt8(VMM_GED_MEMORY_HOTPLUG))
    }

    /// Whether the guest has vCPU `index`: announced, and not ejected since.
    /// A PCI slot's arrival, removal or eject not taken yet.
    var pciBusy: Bool { vmm_pci_hotplug_busy(hotplug) }

    func isPresent(vcpu index: Int) -> Bool { vmm_cpu_hotplug_present(cpuHotplug, UInt32(index)) }

    /// Slots the guest ejected since the last call. The eventfd is read
    /// first, so an eject after it (of a slot or a vCPU, which `isPresent`
    /// shows) wakes the VMM again.
    func takeEjected() -> [PCIAddress] {
        var count: UInt64 = 0
        _ = read(ejectFD, &count, 8)
        return (0..<segments).flatMap { segment in
            let bits = vmm_pci_hotplug_take_ejected(hotplug, UInt32(segment))
            return (0..<32).filter { bits & (1 << $0) != 0 }.map { PCIAddress(segment: segment, slot: $0) }
        }
    }

    private func notify(_ events: UInt8) throws(VMMError) { try platform.notify(events) }
}
