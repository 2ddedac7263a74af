import CVMMCore

#if canImport(Glibc)
import Glibc
#endif

/// receive-migration's side of one connection: the source's
/// configuration, then (as the restore source of the VM built from it)
/// its RAM and state, then the hand-over.
final class MigrationIncoming: RestoreSource {
    let channel: MigrationChannel
    let origin: String
    /// local=on: the source's RAM, to be mapped as it is.
    private var ramFiles: [Int32] = []

    init(channel: MigrationChannel, url: MigrationURL) {
        self.channel = channel
        origin = "a migration over \(url)"
    }

    deinit { ramFiles.forEach { close($0) } }

    func takeRAMFiles() -> [Int32] {
        defer { ramFiles = [] }
        return ramFiles
    }

    /// START: the configuration to build, its taps' descriptors in place
    /// of their names when they came with it (a UNIX socket on one host,
    /// where the source still holds them), and with local=on its RAM.
    func configuration(base: VMConfig, unix: Bool) throws(VMMError) -> VMConfig {
        let header = try channel.header("read the source's configuration")
        guard header.kind == VMM_MIG_START.rawValue, header.length >= 4 else { throw channel.failure(-EPROTO, "read the source's configuration") }
        let payload = try channel.payload(of: header, limit: 1 << 20, "read the source's configuration")
        let local = payload[0] & 1 != 0
        let json = Array(payload.dropFirst(4))
        var launch = base
        launch.restore = nil
        var config: VMConfig
        do {
            config = try VmConfigJSON.config(from: json, base: launch)
        } catch {
            throw .config(.unusable(option: "receive-migration", reason: "the source's configuration: \(error)"))
        }
        guard !local || (unix && config.memory.shared) else { throw channel.failure(-EPROTO, "take the source's RAM") }
        let taps = unix ? config.nets.reduce(0) { $0 + $1.queuePairs } : 0
        let regions = local ? GuestLayout.ramRanges(memoryBytes: config.memory.sizeBytes).count : 0
        guard taps + regions > 0 else { return config }
        var fds: [Int32] = []
        while fds.count < taps + regions {
            var batch = [Int32](repeating: -1, count: 16)
            let got = vmm_mig_receive_fds(&channel.io, &batch, UInt32(min(16, taps + regions - fds.count)))
            guard got > 0 else {
                fds.forEach { close($0) }
                throw channel.failure(got < 0 ? got : -EPROTO, "take the source's taps")
            }
            fds += batch.prefix(Int(got))
        }
        ramFiles = Array(fds[taps..<taps + regions])
        var next = 0
        for index in config.nets.indices {
            config.nets[index].fds = Array(fds[next..<next + config.nets[index].queuePairs])
            next += config.nets[index].queuePairs
        }
        return config
    }

    /// The VM is built: answered, then RAM until the state, which is
    /// applied and answered.
    func apply(to vm: VirtualMachine, vcpus: Int, platform: Platform, virtio: VirtioDevices) throws(VMMError) {
        try channel.reply()
        while true {
            let header = try channel.header("receive guest RAM")
            switch header.kind {
            case VMM_MIG_MEMORY.rawValue:
                let r = vmm_mig_receive_ram(vm.handle, &channel.io, header.length)
                guard r == 0 else { throw channel.failure(r, "receive guest RAM") }
            case VMM_MIG_STATE.rawValue:
                let bytes = try channel.payload(of: header, limit: StateFile.maxBytes, "receive the VM's state")
                try StateFile(parsing: bytes, option: "receive-migration").apply(to: vm, vcpus: vcpus, platform: platform, virtio: virtio)
                try channel.reply()
                return
            default:
                throw channel.failure(-EPROTO, "receive guest RAM")
            }
        }
    }

    /// COMPLETE: the source has stopped and let its disks go; they are
    /// locked here, the VM runs, and the source is told.
    func complete(disks: [DiskBackend], resume: () throws(VMMError) -> Void) throws(VMMError) {
        let header = try channel.header("wait for the hand-over")
        guard header.kind == VMM_MIG_COMPLETE.rawValue, header.length == 0 else { throw channel.failure(-EPROTO, "wait for the hand-over") }
        for case .image(let image) in disks { try image.lock() }
        try resume()
        try? channel.reply()
    }

    /// Tells the source why, if it still listens.
    func refuse(_ error: VMMError) {
        channel.io.idle_ms = 1000
        try? channel.reply("\(error)")
    }
}
