import CVMMCore
import Hypervisor

#if canImport(Glibc)
import Glibc
#endif

/// Cloud Hypervisor's command line. Each option's value is parsed by the
/// Hypervisor library, so the messages are the same wherever a config comes from.
struct CloudHypervisor {
    var kernel: String?
    var initramfs: String?
    var cmdline = ""
    var cpus = CPUsConfig()
    var memory = MemoryConfig()
    var serial = ConsoleConfig.null
    var console = ConsoleOption(mode: .tty)
    var disk: [DiskConfig] = []
    var device: [DeviceConfig] = []
    var net: [NetConfig] = []
    var rng = RngConfig()
    var fs: [FsConfig] = []
    var vsock: VsockConfig?
    var platform = PlatformConfig()
    var seccomp = VMConfig.SeccompMode.enabled
    var landlock = false
    var landlockRules: [LandlockRule] = []
    var apiSocket: APISocketConfig?
    var restore: RestoreConfig?
    var pvpanic = false
    var debugConsole = false
    var logFile: String?
    var verbose = 0
    var user: String?
    var group: String?

    /// The options, their values and their help, in --help's order.
    static let options: [OptionSpec] = [
        OptionSpec("--kernel", .value, "path", "Kernel to boot: a PVH ELF (vmlinux with CONFIG_PVH) or a bzImage."),
        OptionSpec("--initramfs", .value, "path", "Initramfs, handed to the kernel as a PVH module."),
        OptionSpec("--cmdline", .value, "string", "Kernel command line."),
        OptionSpec("--cpus", .value, "cpus", "boot=<n>[,max=<n>]"),
        OptionSpec("--memory", .value, "memory", "size=<size>[,shared=on|off,prefault=on|off,mergeable=on|off,thp=on|off]"),
        OptionSpec("--serial", .value, "serial", "COM1: off|null|tty|file=<path> (default null)."),
        OptionSpec("--console", .value, "console", "virtio-console (hvc0): off|null|tty|file=<path>[,pci_segment=<n>] (default tty)."),
        OptionSpec("--disk", .list, "disk", "path=<raw image>[,readonly=on|off,id=<id>,serial=<s>,num_queues=<n>,queue_size=<n>] ..."),
        OptionSpec("--device", .list, "device", "path=/sys/bus/pci/devices/<bdf>/[,id=<id>,bind=auto] ... : assign a host PCI device (VFIO)"),
        OptionSpec("--net", .list, "net", "tap=<if>,mac=<mac>,ip=<ip>,mask=<mask>,host_mac=<mac>,num_queues=<n>,queue_size=<n>,mtu=<n>,id=<id>,offload_tso|ufo|csum=on|off, or fd=[<fd>,...] instead of tap= ..."),
        OptionSpec("--rng", .optionalValue(defaultValue: "src=\(RngConfig.defaultSource)"), "rng", "virtio-rng: src=<path> (default /dev/urandom; bare --rng too)."),
        OptionSpec("--fs", .list, "fs", "tag=<tag>,socket=<path>[,num_queues=<n>,queue_size=<n>,id=<id>,pci_segment=<n>] ... : virtio-fs on a vhost-user backend (virtiofsd); needs --memory shared=on"),
        OptionSpec("--vsock", .value, "vsock", "cid=<n>,socket=<path>[,id=<id>,pci_segment=<n>]: virtio-vsock; host clients connect to <path> and write CONNECT <port>, the guest reaches <path>_<port>"),
        OptionSpec("--platform", .value, "platform", "num_pci_segments=<n> (1-96; a device goes on its pci_segment=, 0 by default)"),
        OptionSpec("--seccomp", .value, "seccomp", "true|false|log|errno"),
        OptionSpec("--landlock", .flag, "", "Confine the VMM's file access to what its configuration names (Landlock)."),
        OptionSpec("--landlock-rules", .list, "rules", "path=<path>,access=r|w|rw ... : more paths the confined VMM may open"),
        OptionSpec("--api-socket", .value, "api-socket", "HTTP API socket (UNIX domain socket): path=<path>, fd=<fd> or a bare path."),
        OptionSpec("--restore", .value, "restore", "source_url=file:///<dir>[,prefault=on|off,resume=on|off]: the VM from a snapshot (vm.snapshot), paused until vm.resume unless resume=on"),
        OptionSpec("--pvpanic", .flag, "", "The pvpanic device (every VM has one, at port 0x505)."),
        OptionSpec("--debug-console", .value, "debug-console", "off[,iobase=<port>] (the only mode built yet)"),
        OptionSpec("--log-file", .value, "path", "Write log lines here instead of standard error."),
        OptionSpec("--user", .value, "name|uid", "Run as this user once devices are open (not in Cloud Hypervisor)."),
        OptionSpec("--group", .value, "name|gid", "Run as this group (default: the user's group)."),
    ]

    init() {}

    /// Each option's value through the library's parser.
    init(_ read: ArgumentReader) throws(ConfigError) {
        kernel = read.value("--kernel")
        initramfs = read.value("--initramfs")
        cmdline = read.value("--cmdline") ?? ""
        cpus = try read.parse("--cpus", CPUsConfig.init(parsing:), or: cpus)
        memory = try read.parse("--memory", MemoryConfig.init(parsing:), or: memory)
        serial = try read.parse("--serial", { text throws(ConfigError) in try ConsoleConfig(parsing: text, option: "--serial") }, or: serial)
        console = try read.parse("--console", ConsoleOption.init(parsing:), or: console)
        disk = try read.parseList("--disk", DiskConfig.init(parsing:))
        device = try read.parseList("--device", DeviceConfig.init(parsing:))
        net = try read.parseList("--net", NetConfig.init(parsing:))
        rng = try read.parse("--rng", RngConfig.init(parsing:), or: rng)
        fs = try read.parseList("--fs", FsConfig.init(parsing:))
        vsock = try read.parse("--vsock", { text throws(ConfigError) in try VsockConfig(parsing: text) }, or: nil)
        platform = try read.parse("--platform", PlatformConfig.init(parsing:), or: platform)
        seccomp = try read.parse("--seccomp", parseSeccomp, or: seccomp)
        landlock = read.has("--landlock")
        landlockRules = try read.parseList("--landlock-rules", LandlockRule.init(parsing:))
        apiSocket = try read.parse("--api-socket", { text throws(ConfigError) in try APISocketConfig(parsing: text) }, or: nil)
        restore = try read.parse("--restore", { text throws(ConfigError) in try RestoreConfig(parsing: text) }, or: nil)
        pvpanic = read.has("--pvpanic")
        debugConsole = try read.parse("--debug-console", parseDebugConsole, or: debugConsole)
        logFile = read.value("--log-file")
        verbose = read.verbosity
        user = read.value("--user")
        group = read.value("--group")
    }

    var vmConfig: VMConfig {
        var config = VMConfig(kernelPath: kernel, initramfsPath: initramfs, cmdline: cmdline, cpus: cpus, memory: memory,
                 serial: serial, console: console.mode, disks: disk, devices: device, nets: net, rng: rng, platform: platform,
                 seccomp: seccomp, landlock: landlock, landlockRules: landlockRules, apiSocket: apiSocket, logFilePath: logFile, verbosity: verbose,
                 user: user, group: group)
        config.consolePCISegment = console.pciSegment
        config.consoleIOMMU = console.iommu
        config.vsock = vsock
        config.fs = fs
        config.restore = restore
        return config
    }

    static func main() {
        // Parsing opens nothing; then, before anything else is opened, what
        // the parent left open goes, except the taps handed over with fd=.
        let command: CloudHypervisor
        switch parseCommandLine(Array(CommandLine.arguments.dropFirst())) {
        case .success(let parsed): command = parsed
        case .failure(.exit(let text)):
            _ = text.withCString { write(STDOUT_FILENO, $0, strlen($0)) }
            Glibc.exit(0)
        case .failure(.refused(let message)): fail(message)
        }
        // Standard streams are never kept apart: validation refuses them as taps.
        let keep = command.vmConfig.inheritedDescriptors.filter { $0 > 2 }
        let closed = vmm_close_inherited_fds(keep, UInt32(keep.count))
        if closed == -EBADF {
            let shut = command.vmConfig.inheritedDescriptorOptions.filter { $0.fd > 2 && fcntl($0.fd, F_GETFD) < 0 }
            let named = shut.map { "\($0.option)\($0.fd)" }.joined(separator: ", ")
            fail("\(named): the descriptor is not open in the VMM: the caller must pass it open, without O_CLOEXEC")
        }
        guard closed == 0 else { fail("close the descriptors inherited from the parent: \(String(cString: strerror(-closed)))") }
        do {
            let logger = try Logger.open(path: command.logFile, verbosity: command.verbose)
            let reason = try Launcher(config: command.vmConfig, logger: logger).run()
            if case let .failure(message) = reason { fail(message) }
            Glibc.exit(0)
        } catch {
            fail("\(error)")
        }
    }

    enum ParseOutcome: Error {
        /// --help or --version: this text goes to standard output, exit 0.
        case exit(String)
        /// One line for the user.
        case refused(String)
    }

    /// Everything between argv and a configuration to launch, without
    /// side effects, so the fuzzer can drive it (fuzz/cli.swift).
    static func parseCommandLine(_ arguments: [String]) -> Result<CloudHypervisor, ParseOutcome> {
        // Cloud Hypervisor's options not built yet are named as such before
        // anything else is said of the command line.
        if let refusal = UnbuiltOption.firstRefusal(in: arguments) {
            return .failure(.refused("\(refusal)"))
        }
        do throws(ConfigError) {
            switch try ArgumentReader.read(arguments, options) {
            case .help: return .failure(.exit(help))
            case .version: return .failure(.exit("cloud-hypervisor v\(Version.string)\n"))
            case .options(let read): return .success(try CloudHypervisor(read))
            }
        } catch {
            return .failure(.refused("\(error)"))
        }
    }

    static func fail(_ message: String) -> Never {
        let line = "cloud-hypervisor: error: \(message)\n"
        _ = line.withCString { write(STDERR_FILENO, $0, strlen($0)) }
        Glibc.exit(1)
    }
}
