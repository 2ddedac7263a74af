import CVMMCore

#if canImport(Glibc)
import Glibc
#endif

extension BootedVM {
    /// vm.snapshot of this paused VM into `directory`: the memory file,
    /// the configuration, then the state file last, so a snapshot cut
    /// short has none and is refused whole.
    func snapshot(to directory: SnapshotDirectory, config: VMConfig) throws(VMMError) {
        try checkSaveable("a snapshot", config: config)
        let file = try captureState()
        let memory = try directory.create(SnapshotSource.memoryFile)
        defer { close(memory) }
        let r = vmm_memory_save(vm.handle, memory)
        guard r == 0 else { throw .system(SystemError("snapshot: write guest RAM to \(directory.file(SnapshotSource.memoryFile))", returned: r)) }
        try directory.write(VmConfigJSON.json(Self.portable(config)).serialized, to: SnapshotSource.configFile)
        try directory.write(file.serialized, to: SnapshotSource.stateFile)
    }

    /// What a snapshot or a migration (`what`) cannot carry, refused
    /// before anything is written or sent.
    func checkSaveable(_ what: String, config: VMConfig) throws(VMMError) {
        if let device = assigned?.addresses.first {
            throw .config(.notSupported("\(what) of a VM with an assigned device (\(device.device.config.id ?? device.device.config.bdf.description) at \(device.address))"))
        }
        guard hotAddedRAM == 0 else { throw .config(.notSupported("\(what) of a VM whose RAM grew with vm.resize")) }
        let vcpus = vcpuThreads.sorted()
        guard vcpusLeaving.isEmpty, vcpus == Array(0..<vcpus.count), vcpus.count == config.cpus.boot else {
            throw .config(.notSupported("\(what) while a vCPU is being unplugged: wait for the guest to eject it"))
        }
        guard !hotplug.pciBusy else {
            throw .config(.notSupported("\(what) while a PCI hotplug waits for the guest (a device added or asked back it has not taken yet): try again once it has"))
        }
        if let device = virtio.unsaveable() { throw .config(.notSupported("\(what) of a VM with \(device)")) }
    }

    /// The configuration as another VMM rebuilds it: without this launch's ptys.
    static func portable(_ config: VMConfig) -> VMConfig {
        var saved = config
        saved.serialPty = nil
        saved.consolePty = nil
        return saved
    }

    /// Every piece of the paused VM's state, KVM's and the devices'.
    func captureState() throws(VMMError) -> StateFile {
        var file = StateFile()
        var step: UnsafePointer<CChar>?
        var state = vmm_vm_state()
        try checkState(vmm_vm_save(vm.handle, &state, &step), step, "snapshot of the VM")
        file.append("vm", version: VMM_VM_STATE_VERSION, state)
        for index in vcpuThreads.sorted() {
            var cpu = vmm_vcpu_state()
            try checkState(vmm_vcpu_save(vm.handle, UInt32(index), &cpu, &step), step, "snapshot of vCPU \(index)")
            file.append("vcpu \(index)", version: VMM_VCPU_STATE_VERSION, cpu)
            var cpuid = vmm_cpuid_state()
            let r = vmm_vcpu_save_cpuid(vm.handle, UInt32(index), &cpuid)
            guard r == 0 else { throw .system(SystemError("snapshot of vCPU \(index): KVM_GET_CPUID2", returned: r)) }
            file.append("cpuid \(index)", version: VMM_CPUID_STATE_VERSION, cpuid)
        }
        platform.save(into: &file)
        try virtio.save(into: &file)
        return file
    }
}

/// Where a restored VM's RAM and state come from: a snapshot's directory,
/// or a migration's stream. Applied once, into a VM built from the same
/// configuration whose threads have not started.
protocol RestoreSource: AnyObject {
    /// For the log: where the VM came from.
    var origin: String { get }
    func apply(to vm: VirtualMachine, vcpus: Int, platform: Platform, virtio: VirtioDevices) throws(VMMError)
    /// Guest RAM to map as it is (a local migration's memfds), taken once.
    func takeRAMFiles() -> [Int32]
}

extension RestoreSource {
    func takeRAMFiles() -> [Int32] { [] }
}

extension StateFile {
    /// KVM's state, the board's and the devices', into a VM whose RAM is in
    /// place. `option` names the restore in errors.
    func apply(to vm: VirtualMachine, vcpus: Int, platform: Platform, virtio: VirtioDevices) throws(VMMError) {
        let saved = names(prefix: "vcpu ").count
        guard saved == vcpus else {
            throw .config(.unusable(option: "--restore", reason: "the state has \(saved) vCPUs and its configuration \(vcpus): it is damaged"))
        }
        var step: UnsafePointer<CChar>?
        var vmState = try load("vm", version: VMM_VM_STATE_VERSION, as: vmm_vm_state.self)
        try checkState(vmm_vm_restore(vm.handle, &vmState, &step), step, "restore of the VM")
        for index in 0..<vcpus {
            // Older snapshots have none: the vCPU keeps this host's CPUID.
            if names(prefix: "cpuid \(index)").contains("cpuid \(index)") {
                var cpuid = try load("cpuid \(index)", version: VMM_CPUID_STATE_VERSION, as: vmm_cpuid_state.self)
                let r = vmm_vcpu_restore_cpuid(vm.handle, UInt32(index), &cpuid)
                guard r != -EOPNOTSUPP else {
                    throw .config(.unusable(option: "--restore", reason: "the guest ran on a CPU with features this host's KVM does not offer: restore it on a host with the same CPU (or a newer one)"))
                }
                guard r == 0 else { throw .system(SystemError("restore of vCPU \(index): KVM_SET_CPUID2", returned: r)) }
            }
            var cpu = try load("vcpu \(index)", version: VMM_VCPU_STATE_VERSION, as: vmm_vcpu_state.self)
            try checkState(vmm_vcpu_restore(vm.handle, UInt32(index), &cpu, &step), step, "restore of vCPU \(index)")
        }
        try platform.restore(from: self)
        try virtio.restore(from: self)
    }
}

/// A snapshot to restore (`--restore`, vm.restore): its configuration and
/// state read and checked before anything of the VM exists.
final class SnapshotSource: RestoreSource {
    static let configFile = "config.json"
    static let stateFile = "state"
    static let memoryFile = "memory"

    let directory: SnapshotDirectory
    var origin: String { directory.path }
    let config: VMConfig
    let state: StateFile
    let prefault: Bool
    /// Opened with the rest, before the launch is confined.
    private let memory: OwnedDescriptor

    /// The snapshot's nets given the taps `net_fds` names instead of their
    /// names; every one must be a net of the snapshot, with a descriptor
    /// per queue pair.
    private static func adopting(_ nets: [RestoreConfig.RestoredNet], into config: VMConfig) throws(ConfigError) -> VMConfig {
        var config = config
        for net in nets {
            guard let index = config.nets.firstIndex(where: { $0.id == net.id }) else {
                throw .invalidValue(option: "--restore", key: "net_fds", value: net.id,
                                    reason: "the snapshot has no net with this id (it has: \(config.nets.compactMap(\.id).joined(separator: ", ")))")
            }
            guard net.fds.count == config.nets[index].queuePairs else {
                throw .invalidValue(option: "--restore", key: "net_fds", value: net.id,
                                    reason: "\(net.fds.count) descriptor(s) for \(config.nets[index].queuePairs) queue pair(s): give one per pair")
            }
            // The caller's tap, configured by the caller: what named and
            // configured the snapshot's own no longer applies.
            config.nets[index].fds = net.fds
            config.nets[index].tap = nil
            config.nets[index].ip = nil
            config.nets[index].mask = nil
            config.nets[index].hostMAC = nil
            config.nets[index].mtu = nil
        }
        return config
    }

    /// `base`: the launch's own settings (seccomp, user, API socket, logging).
    /// `netFDs`: taps handed over for the snapshot's nets (`net_fds`).
    init(url: String, prefault: Bool, base: VMConfig, netFDs: [RestoreConfig.RestoredNet] = []) throws(VMMError) {
        do {
            directory = try SnapshotDirectory(url: url, what: "source_url")
        } catch {
            throw .config(error)
        }
        self.prefault = prefault
        memory = OwnedDescriptor(try directory.openForReading(Self.memoryFile))
        let stateBytes = try directory.read(Self.stateFile, limit: StateFile.maxBytes)
        do {
            state = try StateFile(parsing: stateBytes)
            var launch = base
            launch.restore = nil
            config = try Self.adopting(netFDs, into: try VmConfigJSON.config(from: try directory.read(Self.configFile, limit: 1 << 20), base: launch))
        } catch let error as SnapshotError {
            throw .config(.unusable(option: "--restore", reason: "\(error)"))
        } catch let error as ConfigError {
            throw .config(.unusable(option: "--restore", reason: "\(directory.file(Self.configFile)): \(error)"))
        } catch let error as VMMError {
            throw error
        } catch {
            throw .config(.unusable(option: "--restore", reason: "\(error)"))
        }
    }

    /// Guest RAM, then the state, into a VM built from `config` whose
    /// threads have not started.
    func apply(to vm: VirtualMachine, vcpus: Int, platform: Platform, virtio: VirtioDevices) throws(VMMError) {
        let r = vmm_memory_restore(vm.handle, memory.raw, prefault)
        guard r != -EINVAL else {
            throw .config(.unusable(option: "--restore", reason: "\(directory.file(Self.memoryFile)) is not the size of the snapshot's RAM: it is damaged or from another snapshot"))
        }
        guard r == 0 else { throw .system(SystemError("restore: read guest RAM from \(directory.file(Self.memoryFile))", returned: r)) }
        try state.apply(to: vm, vcpus: vcpus, platform: platform, virtio: virtio)
    }
}

/// A C state call's result; `step` names the KVM call that failed.
private func checkState(_ result: Int32, _ step: UnsafePointer<CChar>?, _ what: String) throws(VMMError) {
    guard result == 0 else { throw .system(SystemError("\(what): \(step.map { String(cString: $0) } ?? "KVM")", returned: result)) }
}
