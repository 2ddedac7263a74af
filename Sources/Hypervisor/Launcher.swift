import CVMMCore
import Logging

#if canImport(Glibc)
import Glibc
#endif

/// Runs a configuration to its end: builds the VM, boots it, waits on the
/// VMM thread's event loop, and boots again after a guest reset, as Cloud
/// Hypervisor does.
public struct Launcher {
    public let config: VMConfig
    let logger: Logger

    public init(config: VMConfig, logger: Logger = Logger(label: "cloud-hypervisor")) {
        self.config = config
        self.logger = logger
    }

    /// Returns how the last boot ended: power-off or a stop signal (success),
    /// or a guest/KVM failure. Reset reboots and does not return.
    public func run() throws(VMMError) -> StopReason {
        do {
            try config.validate()
        } catch {
            throw .config(error)
        }
        let events = try EventLoop()
        let serialOutput: ConsoleOutput? = config.serial == .off
            ? nil : try ConsoleOutput(config.serial, option: "--serial")
        while true {
            let reason = try boot(serialOutput: serialOutput, events: events)
            guard reason == .reset else { return reason }
            logger.info("guest requested a reset: rebooting")
        }
    }

    private func boot(serialOutput: ConsoleOutput?, events: EventLoop) throws(VMMError) -> StopReason {
        let vm = try VirtualMachine(memory: config.memory)
        try vm.createVCPUs(config.cpus.boot)
        let devices = try LegacyDevices(vm: vm, serialOutput: serialOutput)
        try PVHLoader(vm: vm).load(kernelPath: config.kernelPath ?? "", initramfsPath: config.initramfsPath,
                                   cmdline: config.cmdline)
        logger.info("booting: \(config.cpus.boot) vCPUs, \(ByteSize.describe(config.memory.sizeBytes)) RAM")

        try vm.start()
        let signal = events.waitForStop(of: vm)
        if signal != nil { vm.requestStop() }
        vm.joinVCPUs()
        withExtendedLifetime(devices) {}

        if let signal {
            logger.info("stopped by signal \(signal)")
            return .signal(signal)
        }
        return StopReason(vm.stopInfo)
    }
}
