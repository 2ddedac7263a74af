import CVMMCore

#if canImport(Glibc)
import Glibc
#endif

/// What a finished migration took, for the log and benchmarks.
struct MigrationReport {
    var rounds = 0
    var bytes: Int64 = 0
    var totalMs: Int64 = 0
    /// From the guest's pause to the destination answering that it runs.
    var downtimeMs: Int64 = 0
}

extension BootedVM {
    /// send-migration: iterative pre-copy while the guest runs, then the
    /// guest paused and the rest of its RAM, its state and its disks
    /// handed to the destination. On any failure the source is as it was
    /// (running, or paused if it was), its disks locked again.
    /// `abort`: descriptors that end the migration when readable.
    func migrate(to settings: SendMigrationConfig, config: VMConfig, resources: LaunchResources, abort: [Int32],
                 logger: Logger) throws(VMMError) -> MigrationReport {
        guard !settings.local || config.memory.shared else {
            throw .config(.conflict("send-migration local=on hands the guest's RAM over as it is: the VM needs --memory shared=on (or leave local off to copy it)"))
        }
        try checkSaveable("a migration", config: config)
        var start = Self.portable(config)
        var fds: [Int32] = []
        for (index, tap) in resources.taps.enumerated() {
            if case .unix = settings.destination {
                fds += tap.fds
            } else if config.nets[index].tap == nil {
                throw .config(.notSupported("migrating net \(config.nets[index].id ?? "\(index)") over TCP: it was given as fd=, which the destination cannot open; give it tap=NAME"))
            }
            start.nets[index].fds = []
        }
        if settings.local { fds += vm.regions.map(\.fd) }

        let began = vmm_mig_now_ms()
        let channel = MigrationChannel(socket: try MigrationSocket.connect(settings.destination, timeoutMs: 30_000),
                                       peer: "the destination", abort: abort, idleMs: 60_000)
        let deadline = began + Int64(settings.timeoutS) * 1000
        if settings.timeoutStrategy == .cancel { channel.io.deadline_ms = deadline }
        // A flags word (bit 0: RAM comes as files), then the configuration.
        let flags: [UInt8] = [settings.local ? 1 : 0, 0, 0, 0]
        try channel.send(VMM_MIG_START, flags + VmConfigJSON.json(start).serialized, "send the configuration")
        // At most 16 a message (SCM_RIGHTS), in the order the destination takes them.
        for start in stride(from: 0, to: fds.count, by: 16) {
            let batch = Array(fds[start..<min(start + 16, fds.count)])
            let r = vmm_mig_send_fds(&channel.io, batch, UInt32(batch.count))
            guard r == 0 else { throw channel.failure(r, "hand over the taps\(settings.local ? " and RAM" : "")") }
        }
        try channel.awaitReply("build the VM on the destination")

        var report = MigrationReport()
        var log = DirtyLog(vm: vm)
        defer { vmm_dirty_log_stop(vm.handle) }
        if !settings.local {
            try check(vmm_dirty_log_start(vm.handle), "start logging dirty pages")
            report = try precopy(&log, channel, settings: settings, deadline: deadline)
        }

        let wasPaused = isPaused
        let paused = vmm_mig_now_ms()
        if !wasPaused { try pause() }
        var unlocked: [DiskImage] = []
        do {
            if !settings.local {
                _ = try log.take()
                report.bytes += try log.send(channel, all: false)
            }
            let state = try captureState()
            for case .image(let image) in resources.disks {
                try image.unlock()
                unlocked.append(image)
            }
            try channel.send(VMM_MIG_STATE, state.serialized, "send the VM's state")
            try channel.awaitReply("restore the state on the destination")
            try channel.send(VMM_MIG_COMPLETE, [], "hand the VM over")
            try channel.awaitReply("run the VM on the destination")
        } catch {
            for image in unlocked {
                do { try image.lock() } catch { logger.error("migration failed and \(error)") }
            }
            if !wasPaused { try? resume() }
            throw error
        }
        let now = vmm_mig_now_ms()
        report.downtimeMs = now - paused
        report.totalMs = now - began
        return report
    }

    /// Round 0 sends every page holding anything; each next round what
    /// changed meanwhile, until the rest fits in the downtime (or the
    /// timeout: cancelled, or with `ignore` the rest goes in the downtime).
    private func precopy(_ log: inout DirtyLog, _ channel: MigrationChannel, settings: SendMigrationConfig,
                         deadline: Int64) throws(VMMError) -> MigrationReport {
        var report = MigrationReport()
        var roundStart = vmm_mig_now_ms()
        var sent = try log.send(channel, all: true)
        report.bytes += sent
        report.rounds = 1
        while true {
            let took = max(vmm_mig_now_ms() - roundStart, 1)
            let dirty = try log.take()
            let expectedMs = sent > 0 ? dirty * took / sent : (dirty > 0 ? Int64.max : 0)
            if expectedMs <= Int64(settings.downtimeMs) { break }
            if vmm_mig_now_ms() >= deadline {
                guard settings.timeoutStrategy == .ignore else {
                    throw .system(SystemError("migration: \(dirty >> 20) MiB still changing after timeout_s=\(settings.timeoutS) (about \(expectedMs) ms to copy, downtime_ms=\(settings.downtimeMs)): cancelled, the VM keeps running here (timeout_strategy=ignore stops it to finish)", errno: ETIMEDOUT))
                }
                break
            }
            roundStart = vmm_mig_now_ms()
            sent = try log.send(channel, all: false)
            report.bytes += sent
            report.rounds += 1
        }
        return report
    }

    private func check(_ result: Int32, _ what: String) throws(VMMError) {
        guard result == 0 else { throw .system(SystemError("migration: \(what)", returned: result)) }
    }
}

/// One bitmap per RAM region: what the last take found changed.
private struct DirtyLog {
    let vm: VirtualMachine
    var bitmaps: [[UInt64]]

    init(vm: VirtualMachine) {
        self.vm = vm
        bitmaps = vm.regions.map { [UInt64](repeating: 0, count: vmm_dirty_bitmap_words($0.size)) }
    }

    /// Adds both logs to what waits to be sent; returns its bytes.
    mutating func take() throws(VMMError) -> Int64 {
        var pages = 0
        for index in bitmaps.indices {
            let r = bitmaps[index].withUnsafeMutableBufferPointer { vmm_dirty_log_take(vm.handle, UInt32(index), $0.baseAddress) }
            guard r == 0 else { throw .system(SystemError("migration: read the dirty log", returned: r)) }
            pages += bitmaps[index].reduce(0) { $0 + $1.nonzeroBitCount }
        }
        return Int64(pages) * 4096
    }

    /// The pages waiting (then none wait), or (`all`) every page not all zeros.
    mutating func send(_ channel: MigrationChannel, all: Bool) throws(VMMError) -> Int64 {
        var sent: Int64 = 0
        for index in bitmaps.indices {
            let r = bitmaps[index].withUnsafeBufferPointer { bits in
                vmm_mig_send_ram(vm.handle, &channel.io, UInt32(index), all ? nil : bits.baseAddress)
            }
            guard r >= 0 else { throw channel.failure(Int32(r), "send guest RAM") }
            sent += r
            bitmaps[index].withUnsafeMutableBufferPointer { $0.update(repeating: 0) }
        }
        return sent
    }
}
