/// Everything one VM launch needs, as value types checked before anything
/// is opened. The command line fills it, and `vm.create` through the
/// same option parsers (`VmConfigJSON`).
public struct VMConfig: Sendable, Equatable {
    /// `--seccomp true|false|log|errno`.
    public enum SeccompMode: String, Sendable, Equatable, CaseIterable {
        case enabled = "true"
        case disabled = "false"
        case log
        /// A forbidden call fails with EPERM instead of ending the VMM.
        case errno
    }

    /// A PVH ELF kernel or a bzImage (`--kernel`).
    public var kernelPath: String?
    /// Loaded after the kernel and handed to it as a PVH module (`--initramfs`).
    public var initramfsPath: String?
    /// The kernel command line (`--cmdline`).
    public var cmdline: String
    public var cpus: CPUsConfig
    public var memory: MemoryConfig
    /// COM1 (`--serial`); Cloud Hypervisor's default is `null`.
    public var serial: ConsoleConfig
    /// virtio-console, the guest's hvc0 (`--console`); Cloud Hypervisor's default is `tty`.
    public var console: ConsoleConfig
    /// The PCI segment the virtio console is on (`--console …,pci_segment=N`).
    public var consolePCISegment = 0
    /// `--console …,iommu=on`: the virtio console behind the virtual IOMMU.
    public var consoleIOMMU = false
    public var disks: [DiskConfig]
    public var devices: [DeviceConfig]
    public var nets: [NetConfig]
    /// virtio-rng; every VM has one, as in Cloud Hypervisor (`--rng`).
    public var rng: RngConfig
    /// virtio-fs shares, each on its vhost-user backend (`--fs`).
    public var fs: [FsConfig] = []
    /// virtio-vsock, at most one (`--vsock`).
    public var vsock: VsockConfig?
    /// `--platform`: the PCI segments, and which are behind the virtual IOMMU.
    public var platform: PlatformConfig
    /// VmConfig's `iommu: true`: a virtual IOMMU even if no device is
    /// behind it yet.
    public var iommu = false
    public var seccomp: SeccompMode
    /// Confine file access to what the configuration names (`--landlock`).
    public var landlock: Bool
    /// More paths the confined VMM may open (`--landlock-rules`).
    public var landlockRules: [LandlockRule]
    /// `--api-socket`: the HTTP API's UNIX socket.
    public var apiSocket: APISocketConfig?
    /// `--restore`: the VM comes from this snapshot, whose configuration
    /// replaces the command line's VM options.
    public var restore: RestoreConfig?
    /// Where log lines go instead of standard error (`--log-file`).
    public var logFilePath: String?
    /// Number of `-v` flags: 0 warnings, 1 info, 2 debug, 3+ trace.
    public var verbosity: Int
    /// Run as this user (name or uid) once devices are open (`--user`).
    public var user: String?
    /// Run as this group (name or gid); defaults to the user's group (`--group`).
    public var group: String?
    /// `pty` consoles: the terminals the launch opened (vm.info's `file`,
    /// as Cloud Hypervisor reports them); nil until then.
    public var serialPty: String?
    public var consolePty: String?
    /// The number the next device named by nobody takes (`DeviceIDs.swift`).
    public var deviceCounter = 0

    public static let maxCmdlineBytes = 4096

    public init(kernelPath: String? = nil, initramfsPath: String? = nil, cmdline: String = "",
                cpus: CPUsConfig = CPUsConfig(), memory: MemoryConfig = MemoryConfig(),
                serial: ConsoleConfig = .null, console: ConsoleConfig = .tty,
                disks: [DiskConfig] = [], devices: [DeviceConfig] = [], nets: [NetConfig] = [],
                rng: RngConfig = RngConfig(), platform: PlatformConfig = PlatformConfig(),
                seccomp: SeccompMode = .enabled, landlock: Bool = false,
                landlockRules: [LandlockRule] = [], apiSocket: APISocketConfig? = nil,
                logFilePath: String? = nil, verbosity: Int = 0, user: String? = nil, group: String? = nil) {
        self.kernelPath = kernelPath
        self.initramfsPath = initramfsPath
        self.cmdline = cmdline
        self.cpus = cpus
        self.memory = memory
        self.serial = serial
        self.console = console
        self.disks = disks
        self.devices = devices
        self.nets = nets
        self.rng = rng
        self.platform = platform
        self.seccomp = seccomp
        self.landlock = landlock
        self.landlockRules = landlockRules
        self.apiSocket = apiSocket
        self.logFilePath = logFilePath
        self.verbosity = verbosity
        self.user = user
        self.group = group
    }

    /// Each PCI device's option, segment and whether it is behind the
    /// virtual IOMMU.
    var pciFunctions: [(option: String, segment: Int, iommu: Bool)] {
        disks.map { ("--disk", $0.pciSegment, $0.iommu) } + nets.map { ("--net", $0.pciSegment, $0.iommu) }
            + devices.map { ("--device", $0.pciSegment, $0.iommu) } + [("--rng", rng.pciSegment, rng.iommu)]
            + (console == .off ? [] : [("--console", consolePCISegment, consoleIOMMU)])
            + fs.map { ("--fs", $0.pciSegment, false) } + (vsock.map { [("--vsock", $0.pciSegment, $0.iommu)] } ?? [])
    }

    /// Whether the VM has a virtio-iommu: a device or a segment behind
    /// it, or the API asked for one.
    public var hasIOMMU: Bool { iommu || !platform.iommuSegments.isEmpty || pciFunctions.contains { $0.iommu } }

    /// Descriptors the command line hands over on purpose (`--net fd=`):
    /// the ones kept open when every other inherited one is closed.
    public var inheritedDescriptors: [Int32] { inheritedDescriptorOptions.map(\.fd) }

    /// Each descriptor handed over, with the option that names it.
    public var inheritedDescriptorOptions: [(fd: Int32, option: String)] {
        var fds = nets.flatMap { net in net.fds.map { ($0, "--net fd=") } }
        if case .fd(let fd)? = apiSocket { fds.append((fd, "--api-socket fd=")) }
        fds += (restore?.netFDs ?? []).flatMap { net in net.fds.map { ($0, "--restore net_fds=") } }
        return fds
    }

    /// What an API-only launch checks before any VM is created: the
    /// options that belong to the VMM, not to a VM.
    public func validateVMMOptions() throws(ConfigError) {
        if !landlockRules.isEmpty && !landlock {
            throw .conflict("--landlock-rules: give --landlock too; the rules add to what it allows")
        }
    }

    /// Checks what no single option can: required options, and features
    /// that are recognised but not built yet.
    public func validate() throws(ConfigError) {
        guard kernelPath != nil else {
            throw .missing(option: "--kernel", what: "a kernel is required: give a vmlinux (PVH) or bzImage with --kernel PATH")
        }
        guard cmdline.utf8.count < Self.maxCmdlineBytes else {
            throw .invalidValue(option: "--cmdline", key: nil, value: String(cmdline.prefix(20)) + "…",
                                reason: "longer than \(Self.maxCmdlineBytes - 1) bytes")
        }
        var ids = Set<String>()
        for (option, id) in disks.map({ ("--disk", $0.id) }) + nets.map({ ("--net", $0.id) }) + devices.map({ ("--device", $0.id) })
            + fs.map({ ("--fs", $0.id) }) + [("--vsock", vsock?.id)] {
            // As Cloud Hypervisor: `__` names the VMM's own devices (`__rng`, `__console`).
            if let id, id.hasPrefix("__") {
                throw .invalidValue(option: option, key: "id", value: id, reason: "ids beginning with __ are reserved for the VMM's own devices")
            }
            if let id, !ids.insert(id).inserted {
                throw .conflict("\(option): id '\(id)' is given to more than one device")
            }
        }
        // Every device takes a slot on bus 0 of its segment, beside the host bridge.
        let placed = pciFunctions.map { ($0.option, $0.segment) }
        for (option, segment) in placed where segment >= platform.pciSegments {
            // Cloud Hypervisor: "Invalid PCI segment id".
            throw .invalidValue(option: option, key: "pci_segment", value: String(segment),
                                reason: "no such PCI segment: the VM has \(platform.pciSegments) (give --platform num_pci_segments=\(segment + 1) or more)")
        }
        for segment in 0..<platform.pciSegments {
            let functions = placed.filter { $0.1 == segment }.count
            guard functions <= 31 else {
                throw .invalidValue(option: "--disk", key: nil, value: "\(functions) devices on PCI segment \(segment)",
                                    reason: "a segment's bus 0 has 31 slots for devices (the console and rng take theirs on theirs): move some to another segment with pci_segment=")
            }
        }
        if console == .off && consoleIOMMU {
            throw .conflict("--console off: there is no virtio console to put behind the IOMMU: drop iommu=on, or give the console a mode")
        }
        // Cloud Hypervisor: "Device is on an IOMMU PCI segment (N) but not placed behind IOMMU".
        for function in pciFunctions where platform.iommuSegments.contains(function.segment) && !function.iommu {
            throw .conflict("\(function.option): PCI segment \(function.segment) is behind the IOMMU (--platform iommu_segments): give the device iommu=on, or put it on another segment")
        }
        for disk in disks where disk.vhostSocket != nil && !memory.shared {
            throw .conflict("--disk vhost_user=on: a vhost-user backend maps guest RAM: give --memory shared=on")
        }
        for share in fs {
            // Cloud Hypervisor: "Using vhost-user requires using shared memory or huge pages".
            guard memory.shared else {
                throw .conflict("--fs tag=\(share.tag): a vhost-user backend maps guest RAM: give --memory shared=on")
            }
            // Cloud Hypervisor's rule: a request queue per vCPU at most.
            guard share.numQueues <= cpus.boot else {
                throw .conflict("--fs: num_queues=\(share.numQueues) is more request queues than the \(cpus.boot) vCPU(s): give at most \(cpus.boot)")
            }
        }
        var handedOver = Set<Int32>()
        for net in nets {
            try net.validate()
            // Cloud Hypervisor's rule: a queue pair per vCPU at most.
            guard net.queuePairs <= cpus.boot else {
                throw .conflict("--net: num_queues=\(net.numQueues) is \(net.queuePairs) queue pairs for \(cpus.boot) vCPU(s): give at most \(2 * cpus.boot), or more vCPUs")
            }
            if let mac = net.mac, mac.isMulticast {
                throw .invalidValue(option: "--net", key: "mac", value: mac.description, reason: "a multicast address (first byte odd) cannot be an interface's")
            }
            for fd in net.fds where !handedOver.insert(fd).inserted {
                throw .conflict("--net: descriptor \(fd) is given to more than one network")
            }
        }
        if case .fd(let fd)? = apiSocket, nets.contains(where: { $0.fds.contains(fd) }) {
            throw .conflict("--api-socket fd=\(fd) is also given to --net")
        }
        try validateVMMOptions()
    }

    static func describe(_ console: ConsoleConfig) -> String {
        switch console {
        case .off: return "off"
        case .null: return "null"
        case .tty: return "tty"
        case .pty: return "pty"
        case let .file(path): return "file=\(path)"
        case let .socket(path): return "socket=\(path)"
        }
    }
}
