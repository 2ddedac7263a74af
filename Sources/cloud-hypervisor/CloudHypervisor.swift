import ArgumentParser
import CVMMCore
import Hypervisor
import Logging

#if canImport(Glibc)
import Glibc
#endif

/// Cloud Hypervisor's command line. Each option's value is parsed by the
/// Hypervisor library, so the messages are the same wherever a config comes from.
@main
struct CloudHypervisor: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cloud-hypervisor",
        abstract: "A KVM virtual machine monitor with Cloud Hypervisor's command line.",
        discussion: """
            Example: boot a kernel on COM1 with 4 vCPUs and 512M of RAM:
              cloud-hypervisor --kernel vmlinux --cmdline "console=ttyS0" \\
                --serial tty --console off --cpus boot=4 --memory size=512M

            Cloud Hypervisor's options that are not built yet are known and
            refused with "not supported yet": \(UnbuiltOption.all.map(\.name).joined(separator: " ")).
            """,
        version: "cloud-hypervisor v\(Version.string)"
    )

    @Option(help: ArgumentHelp("Kernel to boot: a PVH ELF (vmlinux with CONFIG_PVH) or a bzImage.", valueName: "path"))
    var kernel: String?

    @Option(help: ArgumentHelp("Initramfs, handed to the kernel as a PVH module.", valueName: "path"))
    var initramfs: String?

    @Option(help: ArgumentHelp("Kernel command line.", valueName: "string"))
    var cmdline: String = ""

    @Option(help: ArgumentHelp("boot=<n>[,max=<n>]", valueName: "cpus"), transform: library(CPUsConfig.init(parsing:)))
    var cpus: CPUsConfig = CPUsConfig()

    @Option(help: ArgumentHelp("size=<size>[,shared=on|off,prefault=on|off,mergeable=on|off,thp=on|off]", valueName: "memory"),
            transform: library(MemoryConfig.init(parsing:)))
    var memory: MemoryConfig = MemoryConfig()

    @Option(help: ArgumentHelp("COM1: off|null|tty|file=<path> (default null).", valueName: "serial"),
            transform: library { text throws(ConfigError) in try ConsoleConfig(parsing: text, option: "--serial") })
    var serial: ConsoleConfig = .null

    @Option(help: ArgumentHelp("virtio-console (hvc0): off|null|tty|file=<path>[,pci_segment=<n>] (default tty).", valueName: "console"),
            transform: library { text throws(ConfigError) in try ConsoleOption(parsing: text) })
    var console = ConsoleOption(mode: .tty)

    @Option(parsing: .upToNextOption, help: ArgumentHelp("path=<raw image>[,readonly=on|off,id=<id>,serial=<s>,num_queues=<n>,queue_size=<n>] ...", valueName: "disk"),
            transform: library(DiskConfig.init(parsing:)))
    var disk: [DiskConfig] = []

    @Option(parsing: .upToNextOption, help: ArgumentHelp("path=/sys/bus/pci/devices/<bdf>/[,id=<id>,bind=auto] ... : assign a host PCI device (VFIO)", valueName: "device"),
            transform: library(DeviceConfig.init(parsing:)))
    var device: [DeviceConfig] = []

    @Option(parsing: .upToNextOption, help: ArgumentHelp("tap=<if>,mac=<mac>,ip=<ip>,mask=<mask>,host_mac=<mac>,num_queues=<n>,queue_size=<n>,mtu=<n>,id=<id>,offload_tso|ufo|csum=on|off, or fd=[<fd>,...] instead of tap= ...", valueName: "net"),
            transform: library(NetConfig.init(parsing:)))
    var net: [NetConfig] = []

    @Option(help: ArgumentHelp("virtio-rng: src=<path> (default /dev/urandom; bare --rng too).", valueName: "rng"),
            transform: library(RngConfig.init(parsing:)))
    var rng: RngConfig = RngConfig()

    @Option(parsing: .upToNextOption, help: ArgumentHelp("tag=<tag>,socket=<path>[,num_queues=<n>,queue_size=<n>,id=<id>,pci_segment=<n>] ... : virtio-fs on a vhost-user backend (virtiofsd); needs --memory shared=on", valueName: "fs"),
            transform: library(FsConfig.init(parsing:)))
    var fs: [FsConfig] = []

    @Option(help: ArgumentHelp("cid=<n>,socket=<path>[,id=<id>,pci_segment=<n>]: virtio-vsock; host clients connect to <path> and write CONNECT <port>, the guest reaches <path>_<port>", valueName: "vsock"),
            transform: library(VsockConfig.init(parsing:)))
    var vsock: VsockConfig?

    @Option(help: ArgumentHelp("num_pci_segments=<n> (1-96; a device goes on its pci_segment=, 0 by default)", valueName: "platform"),
            transform: library(PlatformConfig.init(parsing:)))
    var platform: PlatformConfig = PlatformConfig()

    @Option(help: ArgumentHelp("true|false|log|errno", valueName: "seccomp"), transform: parseSeccomp)
    var seccomp: VMConfig.SeccompMode = .enabled

    @Flag(help: "Confine the VMM's file access to what its configuration names (Landlock).")
    var landlock = false

    @Option(name: .customLong("landlock-rules"), parsing: .upToNextOption,
            help: ArgumentHelp("path=<path>,access=r|w|rw ... : more paths the confined VMM may open", valueName: "rules"),
            transform: library(LandlockRule.init(parsing:)))
    var landlockRules: [LandlockRule] = []

    @Option(name: .customLong("api-socket"), help: ArgumentHelp("HTTP API socket (UNIX domain socket): path=<path>, fd=<fd> or a bare path.", valueName: "api-socket"),
            transform: library(APISocketConfig.init(parsing:)))
    var apiSocket: APISocketConfig?

    @Option(help: ArgumentHelp("source_url=file:///<dir>[,prefault=on|off,resume=on|off]: the VM from a snapshot (vm.snapshot), paused until vm.resume unless resume=on", valueName: "restore"),
            transform: library(RestoreConfig.init(parsing:)))
    var restore: RestoreConfig?

    @Flag(help: "The pvpanic device (every VM has one, at port 0x505).")
    var pvpanic = false

    @Option(name: .customLong("debug-console"), help: ArgumentHelp("off[,iobase=<port>] (the only mode built yet)", valueName: "debug-console"),
            transform: library(parseDebugConsole))
    var debugConsole: Bool = false

    @Option(name: .customLong("log-file"), help: ArgumentHelp("Write log lines here instead of standard error.", valueName: "path"))
    var logFile: String?

    @Flag(name: .short, help: "More log output (repeat for more).")
    var verbose: Int

    @Option(help: ArgumentHelp("Run as this user once devices are open (not in Cloud Hypervisor).", valueName: "name|uid"))
    var user: String?

    @Option(help: ArgumentHelp("Run as this group (default: the user's group).", valueName: "name|gid"))
    var group: String?

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
        case .failure(.exit(let error)): exit(withError: error)
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
            let handler = try FileLogHandler.open(path: command.logFile, verbosity: command.verbose)
            LoggingSystem.bootstrap { _ in handler }
            let reason = try Launcher(config: command.vmConfig).run()
            if case let .failure(message) = reason { fail(message) }
            Glibc.exit(0)
        } catch {
            fail("\(error)")
        }
    }

    enum ParseOutcome: Error {
        /// --help or --version: ArgumentParser prints it and exits 0.
        case exit(Error)
        /// One line for the user.
        case refused(String)
    }

    /// Everything between argv and a configuration to launch, without
    /// side effects, so the fuzzer can drive it (fuzz/cli.swift).
    static func parseCommandLine(_ arguments: [String]) -> Result<CloudHypervisor, ParseOutcome> {
        if let repeated = repeatedSingleOption(arguments) {
            return .failure(.refused("\(repeated) is given more than once; give it once"))
        }
        if let refusal = UnbuiltOption.firstRefusal(in: arguments) {
            return .failure(.refused("\(refusal)"))
        }
        do {
            return .success(try parse(bareRngAsDefault(arguments)))
        } catch {
            if exitCode(for: error) == .success { return .failure(.exit(error)) }
            return .failure(.refused(message(for: error)))
        }
    }

    static func fail(_ message: String) -> Never {
        let line = "cloud-hypervisor: error: \(message)\n"
        _ = line.withCString { write(STDERR_FILENO, $0, strlen($0)) }
        Glibc.exit(1)
    }
}
