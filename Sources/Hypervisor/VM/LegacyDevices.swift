import CVMMCore

#if canImport(Glibc)
import Glibc
#endif

/// The PC devices every x86 guest finds at fixed ports: COM1 (IRQ 4), the
/// ACPI sleep/reset register, the i8042 reset line, pvpanic, the CMOS RTC,
/// the Generic Event Device behind the ACPI power button and PCI and CPU
/// hotplug (IRQ 5), and the PCI and CPU hotplug registers.
final class LegacyDevices {
    static let com1Port: UInt64 = 0x3f8
    static let com1GSI: UInt32 = 4

    private let vm: VirtualMachine
    /// COM1's C device, for the input path; nil with `--serial off`.
    private(set) var serial: OpaquePointer?
    /// The C UART keeps a pointer to its line, so it lives at a fixed address.
    private let serialIRQ: UnsafeMutablePointer<vmm_irq>
    private var rtc: OpaquePointer?
    /// The GED and its line; the C GED keeps a pointer to the line.
    private var ged: OpaquePointer?
    private let gedIRQ: UnsafeMutablePointer<vmm_irq>
    private var hotplug: OpaquePointer?
    private var cpuHotplug: OpaquePointer?
    /// With `hotplug_size` only, as the DSDT's memory devices.
    private var memoryHotplug: OpaquePointer?
    /// Readable when the guest ejected a slot or a vCPU (an _EJ0), for the VMM thread.
    let ejectFD: Int32
    /// PCI segments, each with its hotplug slots.
    private let segments: Int

    /// `serialOutput` nil means `--serial off`: no UART at all; `vcpus`
    /// run from boot.
    init(vm: VirtualMachine, serialOutput: ConsoleOutput?, vcpus: Int, pciSegments: Int) throws(VMMError) {
        self.vm = vm
        segments = pciSegments
        serialIRQ = .allocate(capacity: 1)
        serialIRQ.initialize(to: vmm_irq(eventfd: -1, gsi: Self.com1GSI))
        gedIRQ = .allocate(capacity: 1)
        gedIRQ.initialize(to: vmm_irq(eventfd: -1, gsi: UInt32(VMM_GED_GSI)))
        ejectFD = eventfd(0, Int32(EFD_CLOEXEC | EFD_NONBLOCK))
        guard ejectFD >= 0 else { throw .system(SystemError("eventfd for PCI hotplug", errno: errno)) }

        let vmPointer = UnsafeMutableRawPointer(vm.handle)
        try vm.registerPIO(base: UInt64(VMM_ACPI_SLEEP_PORT), length: UInt64(VMM_ACPI_SLEEP_LEN),
                           handler: vmm_acpi_sleep_io, opaque: vmPointer)
        try vm.registerPIO(base: UInt64(VMM_I8042_CMD_PORT), length: 1, handler: vmm_i8042_io, opaque: vmPointer)
        try vm.registerPIO(base: UInt64(VMM_PVPANIC_PORT), length: 1, handler: vmm_pvpanic_io, opaque: vmPointer)

        let ram = GuestLayout.ramRanges(memoryBytes: vm.memoryBytes)
        let r = vmm_rtc_create(ram.first?.size ?? 0, ram.dropFirst().reduce(0) { $0 + $1.size }, &rtc)
        guard r == 0, let rtc else { throw .system(SystemError("create the CMOS RTC", returned: r)) }
        try vm.registerPIO(base: UInt64(VMM_RTC_PORT), length: UInt64(VMM_RTC_LEN), handler: vmm_rtc_io,
                           opaque: UnsafeMutableRawPointer(rtc))

        var g = vmm_irq_create(vm.handle, UInt32(VMM_GED_GSI), gedIRQ)
        guard g == 0 else { throw .system(SystemError("connect the GED to IRQ \(VMM_GED_GSI)", returned: g)) }
        g = vmm_ged_create(gedIRQ, &ged)
        guard g == 0, let ged else { throw .system(SystemError("create the GED", returned: g)) }
        try vm.registerPIO(base: UInt64(VMM_GED_PORT), length: 1, handler: vmm_ged_io, opaque: UnsafeMutableRawPointer(ged))
        g = vmm_pci_hotplug_create(ejectFD, UInt32(pciSegments), &hotplug)
        guard g == 0, let hotplug else { throw .system(SystemError("create the PCI hotplug registers", returned: g)) }
        try vm.registerPIO(base: UInt64(VMM_PCI_HOTPLUG_PORT), length: UInt64(VMM_PCI_HOTPLUG_LEN), handler: vmm_pci_hotplug_io,
                           opaque: UnsafeMutableRawPointer(hotplug))
        g = vmm_cpu_hotplug_create(UInt32(vcpus), ejectFD, &cpuHotplug)
        guard g == 0, let cpuHotplug else { throw .system(SystemError("create the CPU hotplug registers", returned: g)) }
        try vm.registerPIO(base: UInt64(VMM_CPU_HOTPLUG_PORT), length: UInt64(VMM_CPU_HOTPLUG_LEN), handler: vmm_cpu_hotplug_io,
                           opaque: UnsafeMutableRawPointer(cpuHotplug))
        if vm.hotplugBytes > 0 {
            g = vmm_mem_hotplug_create(&memoryHotplug)
            guard g == 0, let memoryHotplug else { throw .system(SystemError("create the memory hotplug registers", returned: g)) }
            try vm.registerPIO(base: UInt64(VMM_MEM_HOTPLUG_PORT), length: UInt64(VMM_MEM_HOTPLUG_LEN), handler: vmm_mem_hotplug_io,
                               opaque: UnsafeMutableRawPointer(memoryHotplug))
        }

        if let serialOutput {
            var r = vmm_irq_create(vm.handle, Self.com1GSI, serialIRQ)
            guard r == 0 else { throw .system(SystemError("connect COM1 to IRQ 4", returned: r)) }
            var uart: OpaquePointer?
            r = vmm_serial_create(serialOutput.fd, serialIRQ, &uart)
            guard r == 0, let uart else { throw .system(SystemError("create COM1", returned: r)) }
            serial = uart
            try vm.registerPIO(base: Self.com1Port, length: 8, handler: vmm_serial_io, opaque: UnsafeMutableRawPointer(uart))
        }
    }

    /// Runs once the vCPU threads are joined: no handler can be running.
    deinit {
        vmm_serial_destroy(serial)
        vmm_rtc_destroy(rtc)
        vmm_ged_destroy(ged)
        vmm_pci_hotplug_destroy(hotplug)
        vmm_cpu_hotplug_destroy(cpuHotplug)
        vmm_mem_hotplug_destroy(memoryHotplug)
        close(ejectFD)
        vmm_irq_release(vm.handle, serialIRQ)
        serialIRQ.deallocate()
        vmm_irq_release(vm.handle, gedIRQ)
        gedIRQ.deallocate()
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

    /// The ACPI power button, pressed once: the guest decides what follows.
    func pressPowerButton() throws(VMMError) { try notify(UInt8(VMM_GED_POWER_BUTTON)) }

    private func notify(_ events: UInt8) throws(VMMError) {
        let r = vmm_ged_notify(ged, events)
        guard r == 0 else { throw .system(SystemError("signal the GED's interrupt", returned: r)) }
    }
}
