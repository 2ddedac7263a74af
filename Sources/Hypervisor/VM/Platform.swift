import CVMMCore

#if canImport(Glibc)
import Glibc
#endif

/// The PC devices every x86 guest finds at fixed ports (`vmm_platform.h`):
/// COM1, the ACPI sleep/reset register, the i8042 reset line, pvpanic, the
/// CMOS RTC, and the Generic Event Device behind the power button and the
/// hotplug events.
final class Platform {
    private let handle: OpaquePointer

    /// `serialOutput` nil means `--serial off`: no UART at all.
    init(vm: VirtualMachine, serialOutput: ConsoleOutput?) throws(VMMError) {
        let ram = GuestLayout.ramRanges(memoryBytes: vm.memoryBytes)
        let above = ram.dropFirst().reduce(UInt64(0)) { $0 + $1.size }
        var config = vmm_platform_config(serial_fd: serialOutput?.fd ?? -1, ram_below_4g: ram.first?.size ?? 0, ram_above_4g: above)
        var platform: OpaquePointer?
        let r = vmm_platform_create(vm.handle, &config, &platform)
        guard r == 0, let platform else { throw .system(SystemError("create the platform devices (COM1, RTC, GED…)", returned: r)) }
        handle = platform
    }

    /// Runs once the vCPU threads are joined: no handler can be running.
    deinit { vmm_platform_destroy(handle) }

    /// COM1's C device, for the input path; nil with `--serial off`.
    var serial: OpaquePointer? { vmm_platform_serial(handle) }

    /// The ACPI power button, pressed once: the guest decides what follows.
    func pressPowerButton() throws(VMMError) { try notify(UInt8(VMM_GED_POWER_BUTTON)) }

    /// Raises GED `events`: the guest's _EVT reads and handles them.
    func notify(_ events: UInt8) throws(VMMError) {
        let r = vmm_platform_notify(handle, events)
        guard r == 0 else { throw .system(SystemError("signal the GED's interrupt", returned: r)) }
    }
}

extension Platform {
    func save(into file: inout StateFile) {
        var state = vmm_platform_state()
        vmm_platform_save(handle, &state)
        file.append("platform", version: VMM_PLATFORM_STATE_VERSION, state)
    }

    func restore(from file: StateFile) throws(VMMError) {
        var state = try file.load("platform", version: VMM_PLATFORM_STATE_VERSION, as: vmm_platform_state.self)
        let r = vmm_platform_restore(handle, &state)
        guard r != -ENODEV else {
            throw .config(.conflict("the snapshot's VM \(state.has_serial != 0 ? "has" : "has no") serial port and this one \(state.has_serial != 0 ? "has none" : "has one"): restore it with its own configuration"))
        }
        guard r == 0 else { throw .system(SystemError("restore the serial port and RTC", returned: r)) }
    }
}
