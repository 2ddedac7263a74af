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
        if config.serial == .tty && config.console == .tty {
            // Allowed, as Cloud Hypervisor allows it, and said, as it says it.
            logger.warning("--serial tty and --console tty both write to the terminal; standard input goes to the serial port")
        }
        let resources = try LaunchResources(config: config)
        for tap in resources.taps where tap.existed && tap.config.ip != nil {
            logger.warning("tap \(tap.name) already exists: its IP configuration is left as it is")
        }
        let sandbox = try Sandbox(config: config, terminal: resources.terminal != nil)
        while true {
            let reason = try boot(resources, sandbox: sandbox)
            guard reason == .reset else { return reason }
            logger.info("guest requested a reset: rebooting")
        }
    }

    private func boot(_ resources: LaunchResources, sandbox: Sandbox) throws(VMMError) -> StopReason {
        let vm = try VirtualMachine(kvm: resources.kvm, memory: config.memory)
        try vm.createVCPUs(config.cpus.boot)
        let devices = try LegacyDevices(vm: vm, serialOutput: resources.serialOutput)
        let bus = try PCIBus(vm: vm)
        let virtio = try VirtioDevices(vm: vm, bus: bus, resources: resources, logger: logger)
        let assigned = try resources.vfio.map { (vfio) throws(VMMError) in try AssignedDevices(vm: vm, bus: bus, assignment: vfio) }
        try KernelLoader(vm: vm).load(kernel: resources.kernel, initramfs: resources.initramfs, cmdline: config.cmdline,
                                   vcpuCount: config.cpus.boot)
        logger.info("booting: \(config.cpus.boot) vCPUs, \(ByteSize.describe(config.memory.sizeBytes)) RAM")

        // Device threads first: a vCPU's first kick finds its device listening.
        do {
            try virtio.start(filters: sandbox.deviceFilters)
        } catch {
            vm.requestStop()
            virtio.stop()
            throw error
        }
        defer { virtio.stop() }
        if let filter = sandbox.vcpuFilter {
            try vm.start(threadInit: vmm_seccomp_vcpu_init, opaque: filter.opaque)
        } else {
            try vm.start()
        }
        let input = resources.readsInput ? devices.serial.map { SerialInput(fd: STDIN_FILENO, uart: $0) } : nil
        let signal = resources.events.waitForStop(of: vm, input: input)
        if signal != nil { vm.requestStop() }
        vm.joinVCPUs()
        withExtendedLifetime((devices, assigned)) {}

        if let signal {
            logger.info("stopped by signal \(signal)")
            return .signal(signal)
        }
        return StopReason(vm.stopInfo)
    }
}

/// Everything a launch opens once, while it may still be privileged: every
/// boot of the guest reuses these.
final class LaunchResources {
    let kvm: KVMDevice
    let kernel: FileReader
    let initramfs: FileReader?
    let serialOutput: ConsoleOutput?
    /// virtio-console's output; nil with `--console off`.
    let consoleOutput: ConsoleOutput?
    /// `--console tty` while COM1 does not take standard input: it goes to hvc0.
    let consoleReadsInput: Bool
    let disks: [DiskImage]
    let taps: [Tap]
    /// `--device`: the VFIO container, groups and devices; nil without any.
    let vfio: VFIOAssignment?
    /// virtio-rng's entropy source.
    let rngSource: Int32
    let events: EventLoop
    /// `--serial tty`: standard input goes to the guest, a terminal in raw mode.
    let readsInput: Bool
    let terminal: RawTerminal?

    init(config: VMConfig) throws(VMMError) {
        do {
            kernel = try FileReader(path: config.kernelPath ?? "", option: "--kernel")
            initramfs = try config.initramfsPath.map { (path) throws(BootError) in try FileReader(path: path, option: "--initramfs") }
        } catch {
            throw .boot(error)
        }
        serialOutput = config.serial == .off ? nil : try ConsoleOutput(config.serial, option: "--serial")
        consoleOutput = config.console == .off ? nil : try ConsoleOutput(config.console, option: "--console")
        var disks: [DiskImage] = []
        for disk in config.disks { disks.append(try DiskImage(disk)) }
        self.disks = disks
        var taps: [Tap] = []
        for net in config.nets { taps.append(try Tap(net)) }
        self.taps = taps
        vfio = config.devices.isEmpty ? nil : try VFIOAssignment(config.devices)
        rngSource = open(config.rng.source, O_RDONLY | O_CLOEXEC)
        guard rngSource >= 0 else {
            throw .system(SystemError("--rng src=\(config.rng.source): open", errno: errno))
        }
        kvm = try KVMDevice()
        events = try EventLoop()
        readsInput = config.serial == .tty
        consoleReadsInput = config.console == .tty && !readsInput
        terminal = readsInput || consoleReadsInput ? RawTerminal(fd: STDIN_FILENO) : nil
    }

    deinit { close(rngSource) }
}
