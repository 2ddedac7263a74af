import CVMMCore

#if canImport(Glibc)
import Glibc
#endif

/// `--landlock`: once everything is open, the VMM may open only what its
/// configuration names — kernel, initramfs, disks (read-only ones
/// read-only), console and log files, /dev/kvm, /dev/vfio and the sysfs
/// directories of assigned devices, the rng source — and the
/// `--landlock-rules` paths. Enforced on the VMM thread before any other
/// thread starts, so every thread is confined.
enum Landlock {
    /// (path, read, write) for every file the configuration names.
    static func rules(for config: VMConfig) -> [LandlockRule] {
        var rules: [LandlockRule] = []
        func add(_ path: String?, write: Bool) {
            if let path { rules.append(LandlockRule(path: path, read: true, write: write)) }
        }
        add(config.kernelPath, write: false)
        add(config.initramfsPath, write: false)
        for disk in config.disks where disk.vhostSocket == nil { add(disk.path, write: !disk.readonly) }
        for console in [config.serial, config.console] {
            if case let .file(path) = console { add(path, write: true) }
        }
        add(config.logFilePath, write: true)
        add(config.rng.source, write: false)
        add("/dev/kvm", write: true)
        if !config.devices.isEmpty {
            add("/dev/vfio", write: true)
            for device in config.devices { add("/sys/bus/pci/devices/\(device.bdf)", write: true) }
        }
        return rules + config.landlockRules
    }

    static func enforce(_ config: VMConfig) throws(VMMError) {
        let abi = vmm_landlock_abi()
        guard abi >= 1 else {
            throw .config(.notSupported("--landlock on this kernel (it has no Landlock enabled: check with "
                + "dmesg | grep landlock; it needs lsm=landlock,...); run without --landlock"))
        }
        var ruleset: Int32 = -1
        var r = vmm_landlock_create(abi, &ruleset)
        guard r == 0 else { throw .system(SystemError("--landlock: create the ruleset", returned: r)) }
        for rule in rules(for: config) {
            r = vmm_landlock_allow(ruleset, abi, rule.path, rule.read, rule.write)
            guard r == 0 else {
                close(ruleset)
                throw .system(SystemError("--landlock: allow \(rule.path)", returned: r))
            }
        }
        // The sockets the VMM made go when it ends: their directories allow removal.
        var sockets: [(String, String)] = []
        if case .path(let socket)? = config.apiSocket { sockets.append(("the API socket", socket)) }
        if let vsock = config.vsock { sockets.append(("the vsock socket", vsock.socket)) }
        for case let .socket(path) in [config.serial, config.console] { sockets.append(("the console socket", path)) }
        for (what, socket) in sockets {
            let slash = socket.lastIndex(of: "/")
            let dir = slash.map { $0 == socket.startIndex ? "/" : String(socket[..<$0]) } ?? "."
            r = vmm_landlock_allow_remove(ruleset, dir)
            guard r == 0 else {
                close(ruleset)
                throw .system(SystemError("--landlock: allow removing \(what) in \(dir)", returned: r))
            }
        }
        r = vmm_landlock_enforce(ruleset)
        guard r == 0 else { throw .system(SystemError("--landlock: enforce the ruleset", returned: r)) }
    }
}
