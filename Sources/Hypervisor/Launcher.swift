import CVMMCore

#if canImport(Glibc)
import Glibc
#endif

/// Runs a launch to its end: the command line's VM, the API's, or both.
/// Binds the API socket and opens the command line's files while still
/// privileged, drops privileges, starts the API thread, then runs the VMM
/// thread's loop (`VMMLoop`) until the guest powers off, a signal or
/// `vmm.shutdown` arrives, or the guest fails.
public struct Launcher {
    public let config: VMConfig
    let logger: Logger

    public init(config: VMConfig, logger: Logger = Logger()) {
        self.config = config
        self.logger = logger
    }

    /// With `--api-socket` and no `--kernel`, nothing boots until the API
    /// says `vm.create` and `vm.boot`, as in Cloud Hypervisor.
    public var waitsForAPI: Bool { config.apiSocket != nil && config.kernelPath == nil && config.restore == nil }

    /// Returns how the VMM ended: power-off, a stop signal or `vmm.shutdown`
    /// (success), or a guest/KVM failure. A guest reset reboots.
    public func run() throws(VMMError) -> StopReason {
        var config = self.config.withDeviceIDs()
        var snapshot: SnapshotSource?
        if let restore = config.restore {
            // Cloud Hypervisor: the snapshot's configuration is the VM's.
            guard config.kernelPath == nil else {
                throw .config(.conflict("--restore takes the VM's configuration from the snapshot: give it without --kernel and the other VM options"))
            }
            let source = try SnapshotSource(url: restore.sourceURL, prefault: restore.prefault, base: self.config, netFDs: restore.netFDs)
            config = source.config.withDeviceIDs()
            snapshot = source
        }
        do {
            try waitsForAPI ? config.validateVMMOptions() : config.validate()
        } catch {
            throw .config(error)
        }
        if config.serial == .tty && config.console == .tty && !waitsForAPI {
            // Allowed, as Cloud Hypervisor allows it, and said, as it says it.
            logger.warning("--serial tty and --console tty both write to the terminal; standard input goes to the serial port")
        }
        // Before any thread exists: the allocator's policy, and the signals
        // blocked for the signalfd.
        try Sandbox.useMallocPolicy()
        let events = try EventLoop()
        let identity = try Sandbox.identity(config)
        let listener = try config.apiSocket.map { (socket) throws(VMMError) in try APIListener(socket) }
        try listener?.handOver(to: identity)
        let resources = waitsForAPI ? nil : try LaunchResources(config: config, logger: logger)
        try resources?.vsock?.handOver(to: identity)
        try resources?.serialOutput?.handOver(to: identity)
        try resources?.consoleOutput?.handOver(to: identity)
        try Sandbox.dropPrivileges(to: identity)

        let channel = listener == nil ? nil : try APIChannel()
        var server: APIServer?
        if let listener, let channel {
            server = try APIServer(listener: listener, channel: channel, base: self.config, filter: try Sandbox.apiFilter(config, terminal: isatty(STDIN_FILENO) == 1))
            try server?.start()
            logger.info("API: serving on \(config.apiSocket!.description)")
        }
        defer { server?.stop() }
        let loop = VMMLoop(base: self.config, created: waitsForAPI ? nil : config, resources: resources, events: events,
                           channel: channel, logger: logger)
        return try loop.run(restoring: snapshot, resume: self.config.restore?.resume ?? false)
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
    /// Hotplug adds to these and takes from them: a reboot keeps what the guest has.
    var disks: [DiskBackend]
    var taps: [Tap]
    /// The VMM's VFIO container, opened with the first assigned device.
    var vfio: VFIOContainer?
    /// The assigned devices, the command line's then hot-added ones, in
    /// `vfio`: a reboot keeps them, vm.remove-device closes them.
    var assigned: [VFIODevice]
    /// Shared RAM's host addresses, the same every boot.
    let ramArena: RAMArena?
    /// The virtio-vsock's host socket; hotplug sets it, removal ends it.
    var vsock: VsockSocket?
    /// Each virtio-fs share's backend connection, in the configuration's order.
    var fs: [FsBackend]
    /// virtio-rng's entropy source.
    private let rng: OwnedDescriptor
    var rngSource: Int32 { rng.raw }
    /// `--serial tty`: standard input goes to the guest, a terminal in raw mode.
    let readsInput: Bool
    /// Where COM1's and hvc0's input comes from: standard input (`tty`), a
    /// pty's main side (`pty`), or nowhere.
    var serialInputFD: Int32? { readsInput ? STDIN_FILENO : serialOutput?.inputFD }
    var consoleInputFD: Int32 { consoleReadsInput ? STDIN_FILENO : consoleOutput?.inputFD ?? -1 }
    let terminal: RawTerminal?

    /// `lockingDisks` false: a migration's destination, which locks the
    /// images once the source has let them go.
    init(config: VMConfig, logger: Logger, lockingDisks: Bool = true) throws(VMMError) {
        do {
            kernel = try FileReader(path: config.kernelPath ?? "", option: "--kernel")
            initramfs = try config.initramfsPath.map { (path) throws(BootError) in try FileReader(path: path, option: "--initramfs") }
        } catch {
            throw .boot(error)
        }
        ramArena = config.memory.shared ? try RAMArena(for: config.memory) : nil
        serialOutput = config.serial == .off ? nil : try ConsoleOutput(config.serial, option: "--serial")
        consoleOutput = config.console == .off ? nil : try ConsoleOutput(config.console, option: "--console")
        var disks: [DiskBackend] = []
        for disk in config.disks { disks.append(try DiskBackend(disk, locking: lockingDisks)) }
        self.disks = disks
        var taps: [Tap] = []
        for net in config.nets { taps.append(try Tap(net)) }
        self.taps = taps
        var vfio: VFIOContainer?
        assigned = config.devices.isEmpty ? [] : try VFIODevice.open(config.devices, container: &vfio)
        self.vfio = vfio
        vsock = try config.vsock.map { (vsock) throws(VMMError) in try VsockSocket(vsock) }
        var fs: [FsBackend] = []
        for share in config.fs { fs.append(try FsBackend(share)) }
        self.fs = fs
        do throws(UserPath.Refusal) {
            let source = try UserPath.open(config.rng.source, flags: O_RDONLY, accept: [.characterDevice, .regularFile])
            rng = OwnedDescriptor(source.fd)
            if source.kind == .regularFile && source.size == 0 {
                throw UserPath.Refusal(reason: "is empty: virtio-rng would have no entropy to give (use /dev/urandom)")
            }
        } catch {
            throw .config(.invalidValue(option: "--rng", key: "src", value: config.rng.source, reason: error.reason))
        }
        kvm = try KVMDevice()
        readsInput = config.serial == .tty
        consoleReadsInput = config.console == .tty && !readsInput
        terminal = readsInput || consoleReadsInput ? RawTerminal(fd: STDIN_FILENO) : nil
        for (option, output) in [("--serial", serialOutput), ("--console", consoleOutput)] {
            if let path = output?.ptyPath { logger.info("\(option) pty: \(path)") }
        }
        for tap in taps where tap.existed && tap.config.ip != nil {
            logger.warning("tap \(tap.name) already exists: its IP configuration is left as it is")
        }
    }
}
