import CVMMCore

#if canImport(Glibc)
import Glibc
#endif

/// The VMM thread: the one place the VM changes. It waits on the event
/// loop for the guest stopping, a signal, or an API request, and acts:
/// create, boot, pause, resume, shut down, reboot, delete, plug.
///
/// `state` is the lifecycle (nil: no VM, which `vm.info` answers 404);
/// every change of it goes through `move(to:)` and so through
/// `VMState.transition`. What each state holds: `created` a
/// configuration; `running` and `paused` also the open files and devices
/// (`resources`) and the booted VM; `shutdown` the configuration and the
/// files, kept for the next boot. The guest powering off or failing ends
/// the VMM, as it ends Cloud Hypervisor's. Requests are answered with an
/// `APIOutcome`; what HTTP makes of it is the API thread's business.
final class VMMLoop {
    private let base: VMConfig
    private var state: VMState?
    private var config: VMConfig?
    /// The files and devices `config` names, opened at its first boot and
    /// kept across reboots; closed by `vm.delete`.
    private var resources: LaunchResources?
    /// Installed at the first boot, once: the VMM thread's filter and Landlock.
    private var sandbox: Sandbox?
    /// Present exactly while `state` is `running` or `paused`.
    private var booted: BootedVM?
    /// vm.send-migration handed the VM over: the VMM ends once it has answered.
    private var migrated = false
    /// Slot → id of what vm.remove-device asked the guest to let go of.
    private var removing: [PCIAddress: String] = [:]
    private let events: EventLoop
    private let channel: APIChannel?
    private let logger: Logger

    init(base: VMConfig, created: VMConfig?, resources: LaunchResources?, events: EventLoop, channel: APIChannel?,
         logger: Logger) {
        self.base = base
        config = created
        state = created == nil ? nil : .created
        self.resources = resources
        self.events = events
        self.channel = channel
        self.logger = logger
    }

    /// `restoring`: `--restore`, the first boot comes from this snapshot.
    func run(restoring snapshot: SnapshotSource? = nil, resume: Bool = false) throws(VMMError) -> StopReason {
        if let snapshot {
            try restore(snapshot, resume: resume)
        } else if config != nil {
            try boot()
        }
        defer {
            channel?.close()
            booted?.stop()
        }
        while true {
            let event = try events.next(stopFD: booted?.vm.stopEventFD, input: booted?.input, apiFD: channel?.requestFD,
                                        ejectFD: booted?.ejectFD)
            switch event {
            case .signal(let signal):
                logger.info("stopped by signal \(signal)")
                return .signal(signal)
            case .vmStopped:
                guard let reason = retire() else { continue }
                guard reason == .reset else { return reason }
                logger.info("guest requested a reset: rebooting")
                try boot()
            case .ejected:
                ejected()
            case .api:
                guard let channel, let request = channel.take() else { continue }
                channel.respond(handle(request))
                if request == .vmmShutdown { return .requested }
                if migrated { return .migrated }
            }
        }
    }

    /// Whether the VM may go to `next` (the change is made once the
    /// operation that needs it succeeded); a refusal names both states and
    /// is a 500, as Cloud Hypervisor's `InvalidStateTransition`.
    private func permit(_ next: VMState, _ endpoint: String) throws(APIFailure) {
        guard let current = state else { throw APIFailure(.noVM, "\(endpoint): no VM is created (vm.create first)") }
        do {
            _ = try current.transition(to: next)
        } catch {
            throw APIFailure(.failed, "\(endpoint): \(error)")
        }
    }

    /// The booted VM `endpoint` acts on (`VmNotRunning` otherwise).
    private func running(_ endpoint: String) throws(APIFailure) -> BootedVM {
        guard state != nil else { throw APIFailure(.noVM, "\(endpoint): no VM is created (vm.create first)") }
        guard let booted else { throw APIFailure(.failed, "\(endpoint): the VM is not running (vm.boot it first)") }
        return booted
    }

    /// Ends the running boot and lets it go before anything else happens:
    /// the next boot must not meet its RAM, DMA mappings or device slots.
    /// Why the guest stopped, or nil when nothing ran.
    private func retire() -> StopReason? {
        guard let vm = booted else { return nil }
        let reason = vm.stop()
        booted = nil
        state = .shutdown
        finishRemovals()
        return reason
    }

    /// Boots `config` from `created` or `shutdown` (callers check the
    /// transition first): opens its files the first time, confines the
    /// VMM thread once.
    /// A restored VM comes up paused; `resume` lets it run at once.
    private func restore(_ snapshot: SnapshotSource, resume: Bool) throws(VMMError) {
        try boot(restoring: snapshot)
        if resume {
            try booted?.resume()
            state = .running
        }
    }

    private func boot(restoring snapshot: RestoreSource? = nil) throws(VMMError) {
        guard let config, state?.allows(.running) == true else { return }
        if resources == nil {
            // What confines the VMM thread also stops it opening another
            // VM's files; the first VM's stay open until vm.delete.
            if sandbox != nil && (config.seccomp != .disabled || config.landlock) {
                throw .config(.conflict("a new VM after vm.delete needs files the confined VMM thread can no longer open: start a new VMM for it (or run this one with --seccomp false and without --landlock)"))
            }
            resources = try LaunchResources(config: config, logger: logger, lockingDisks: !(snapshot is MigrationIncoming))
        }
        guard let resources else { return }
        // The terminals the launch opened, as Cloud Hypervisor reports them.
        self.config?.serialPty = resources.serialOutput?.ptyPath
        self.config?.consolePty = resources.consoleOutput?.ptyPath
        if sandbox == nil {
            let made = try Sandbox(config: config, terminal: resources.terminal != nil, restoring: snapshot != nil)
            for output in [resources.serialOutput, resources.consoleOutput] {
                try output?.start(filter: made.deviceFilters[VMM_THREAD_CONSOLE_SOCKET])
            }
            sandbox = made
        }
        guard let sandbox else { return }
        booted = try BootedVM(config: config, resources: resources, sandbox: sandbox, logger: logger, restoring: snapshot)
        state = snapshot == nil ? .running : .paused
        // What building the VM allocated and let go (the kernel's bytes,
        // tables, parsed configuration) is the heap's high-water mark: kept
        // resident, in every VM, until given back.
        vmm_heap_trim()
    }


    // MARK: API requests

    private func handle(_ request: APIRequest) -> APIOutcome {
        do throws(APIFailure) {
            let answer = try answer(request)
            return .success(answer)
        } catch {
            // Descriptors a refused request brought are not kept (a restore
            // lets go of its own: a tap may have taken some).
            if case .vmRestore = request {} else { request.descriptors.forEach { close($0) } }
            return .failure(error)
        }
    }

    private func answer(_ request: APIRequest) throws(APIFailure) -> APIAnswer {
        switch request {
        case .vmmPing:
            return .body(.object([
                "build_version": .string("v\(Version.string)"), "version": .string(Version.string),
                "pid": .integer(Int64(getpid())), "features": .array([]),
            ]))
        case .vmmShutdown:
            _ = retire()
            return .done
        case .vmCreate(let newConfig):
            guard state == nil else { throw APIFailure(.failed, "vm.create: a VM is already created (vm.delete it first)") }
            config = newConfig.withDeviceIDs()
            state = .created
            return .done
        case .vmBoot:
            // Booting a paused VM resumes it, as in Cloud Hypervisor.
            if state == .paused { return try resume("vm.boot") }
            try permit(.running, "vm.boot")
            do {
                try boot()
            } catch {
                throw APIFailure(.failed, "vm.boot: \(error)")
            }
            return .done
        case .vmInfo:
            guard let config, let state else { throw APIFailure(.noVM, "vm.info: no VM is created (vm.create first)") }
            var info: [String: JSONValue] = [
                "config": VmConfigJSON.json(config), "state": .string(state.reported),
                "memory_actual_size": .integer(Int64(config.memory.sizeBytes)),
            ]
            // Cloud Hypervisor has a tree only while a VM is built.
            if let booted { info["device_tree"] = DeviceTree.json(booted.pciDevices(), serial: config.serial != .off) }
            return .body(.object(info))
        case .vmShutdown:
            _ = try running("vm.shutdown")
            try permit(.shutdown, "vm.shutdown")
            _ = retire()
            return .done
        case .vmReboot:
            _ = try running("vm.reboot")
            _ = retire()
            do {
                try boot()
            } catch {
                throw APIFailure(.failed, "vm.reboot: \(error)")
            }
            return .done
        case .vmDelete:
            _ = retire()
            // Taps handed over by vm.add-net are the VMM's until a boot adopts them.
            if resources == nil { config?.nets.flatMap(\.fds).forEach { close($0) } }
            config = nil
            resources = nil
            state = nil
            return .done
        case .vmPause:
            let vm = try running("vm.pause")
            try permit(.paused, "vm.pause")
            do {
                try vm.pause()
            } catch {
                throw APIFailure(.failed, "vm.pause: \(error)")
            }
            state = .paused
            return .done
        case .vmResume:
            return try resume("vm.resume")
        case .vmCounters:
            let counters = try running("vm.counters").counters().mapValues { values in
                JSONValue.object(values.mapValues { .integer(Int64(clamping: $0)) })
            }
            return .body(.object(counters))
        case .vmPowerButton:
            do {
                try running("vm.power-button").pressPowerButton()
            } catch let error as APIFailure {
                throw error
            } catch {
                throw APIFailure(.failed, "vm.power-button: \(error)")
            }
            return .done
        case .vmAddDisk, .vmAddNet, .vmAddDevice, .vmAddVsock, .vmAddFs:
            return try add(request)
        case .vmRemoveDevice(let id):
            return try remove(id)
        case .vmResize(let vcpus, let ramBytes):
            return try resize(vcpus: vcpus, ramBytes: ramBytes)
        case .vmSnapshot(let url):
            return try snapshot(url)
        case .vmRestore(let restore):
            return try self.restore(restore)
        case .vmSendMigration(let settings):
            return try sendMigration(settings)
        case .vmReceiveMigration(let settings):
            return try receiveMigration(settings)
        }
    }

    /// vm.send-migration: the VM goes to the destination, and this VMM
    /// ends once it has answered; a failure leaves the VM here as it was.
    /// The VMM thread is busy meanwhile: other requests wait, a stop signal
    /// or the guest stopping ends the migration.
    private func sendMigration(_ settings: SendMigrationConfig) throws(APIFailure) -> APIAnswer {
        let vm = try running("vm.send-migration")
        guard let config, let resources else { throw APIFailure(.failed, "vm.send-migration: the VM is not running") }
        try settledRemovals("vm.send-migration")
        logger.info("vm.send-migration: to \(settings.destination), downtime_ms=\(settings.downtimeMs), timeout_s=\(settings.timeoutS)")
        do {
            let report = try vm.migrate(to: settings, config: config, resources: resources,
                                        abort: [events.signalFD, vm.vm.stopEventFD], logger: logger)
            logger.info("vm.send-migration: done in \(report.totalMs) ms: \(report.rounds) rounds, \(report.bytes >> 20) MiB of RAM sent, downtime \(report.downtimeMs) ms")
        } catch {
            throw APIFailure(.failed, "vm.send-migration: \(error)")
        }
        migrated = true
        return .done
    }

    /// A device vm.remove-device asked back and the guest has not ejected
    /// yet would be lost with the VM's state: refused until it is gone.
    private func settledRemovals(_ endpoint: String) throws(APIFailure) {
        guard let id = removing.values.first else { return }
        throw APIFailure(.failed, "\(endpoint): device \(id) is being removed and the guest has not ejected it yet: try again once it has")
    }

    /// vm.receive-migration into a VMM with no VM: waits for the source,
    /// builds its VM, takes its RAM and state, and runs it. On a failure
    /// the VMM has no VM again and the source keeps its own.
    private func receiveMigration(_ settings: ReceiveMigrationConfig) throws(APIFailure) -> APIAnswer {
        guard state == nil else { throw APIFailure(.failed, "vm.receive-migration: a VM is already created (vm.delete it first)") }
        var incoming: MigrationIncoming?
        do throws(VMMError) {
            let listener = try MigrationSocket.listen(settings.receiver)
            logger.info("vm.receive-migration: waiting on \(settings.receiver)")
            let socket = try MigrationSocket.accept(listener, url: settings.receiver, abort: events.signalFD)
            let arriving = MigrationIncoming(channel: MigrationChannel(socket: socket, peer: "the source", abort: [events.signalFD], idleMs: 60_000),
                                             url: settings.receiver)
            incoming = arriving
            let unix = if case .unix = settings.receiver { true } else { false }
            config = try arriving.configuration(base: base, unix: unix).withDeviceIDs()
            state = .created
            try boot(restoring: arriving)
            guard let booted, let resources else { throw .system(SystemError("vm.receive-migration: the VM was not built", errno: EIO)) }
            try arriving.complete(disks: resources.disks) { () throws(VMMError) in try booted.resume() }
            state = .running
        } catch {
            incoming?.refuse(error)
            abandon(config?.nets.flatMap(\.fds) ?? [])
            throw APIFailure(.failed, "vm.receive-migration: \(error)")
        }
        logger.info("vm.receive-migration: the VM runs here")
        return .done
    }

    /// A restore or a received migration that failed: no VM again, and the
    /// taps' descriptors it brought closed, those a tap adopted excepted
    /// (the tap closed them as it went).
    private func abandon(_ brought: [Int32]) {
        _ = retire()
        config = nil
        resources = nil
        state = nil
        Self.closeUnadopted(brought)
    }

    private static func closeUnadopted(_ fds: [Int32]) {
        fds.filter { fcntl($0, F_GETFD) >= 0 }.forEach { close($0) }
    }

    /// vm.snapshot of the paused VM (Cloud Hypervisor refuses a running one too).
    private func snapshot(_ url: String) throws(APIFailure) -> APIAnswer {
        let vm = try running("vm.snapshot")
        guard state == .paused, let config else { throw APIFailure(.failed, "vm.snapshot: the VM is running: vm.pause it first") }
        try settledRemovals("vm.snapshot")
        do {
            let directory = try SnapshotDirectory(url: url, what: "destination_url")
            try vm.snapshot(to: directory, config: config)
        } catch let error as ConfigError {
            throw APIFailure(.invalidConfig, "vm.snapshot: \(error)")
        } catch {
            throw APIFailure(.failed, "vm.snapshot: \(error)")
        }
        logger.info("vm.snapshot: written to \(url)")
        return .done
    }

    /// vm.restore into a VMM with no VM: the snapshot's configuration is
    /// created and restored, paused unless `resume`.
    private func restore(_ restore: RestoreConfig) throws(APIFailure) -> APIAnswer {
        guard state == nil else {
            Self.closeUnadopted(restore.netFDs.flatMap(\.fds))
            throw APIFailure(.failed, "vm.restore: a VM is already created (vm.delete it first)")
        }
        do {
            let source = try SnapshotSource(url: restore.sourceURL, prefault: restore.prefault, base: base, netFDs: restore.netFDs)
            config = source.config.withDeviceIDs()
            state = .created
            try self.restore(source, resume: restore.resume)
        } catch {
            abandon(restore.netFDs.flatMap(\.fds))
            if case .config = error { throw APIFailure(.invalidConfig, "vm.restore: \(error)") }
            throw APIFailure(.failed, "vm.restore: \(error)")
        }
        return .done
    }

    private func resume(_ endpoint: String) throws(APIFailure) -> APIAnswer {
        let vm = try running(endpoint)
        try permit(.running, endpoint)
        do {
            try vm.resume()
        } catch {
            throw APIFailure(.failed, "\(endpoint): \(error)")
        }
        state = .running
        return .done
    }

    /// vm.resize: the running VM grows or shrinks; a VM not running keeps
    /// the numbers for its next boot. Each change is kept once made,
    /// whatever happens to the other.
    private func resize(vcpus: Int?, ramBytes: UInt64?) throws(APIFailure) -> APIAnswer {
        guard var changed = config else { throw APIFailure(.noVM, "vm.resize: no VM is created (vm.create first)") }
        if let vcpus, vcpus > changed.cpus.max {
            throw APIFailure(.invalidConfig, "vm.resize: desired_vcpus \(vcpus) is above max_vcpus \(changed.cpus.max): create the VM with a higher max (--cpus max=)")
        }
        if let ramBytes, ramBytes % MemoryConfig.pageSize != 0 {
            throw APIFailure(.invalidConfig, "vm.resize: desired_ram \(ramBytes) is not a multiple of 4K")
        }
        // Kata asks every time, mostly for what the VM already has.
        let cpus = vcpus.flatMap { $0 != changed.cpus.boot ? $0 : nil }
        let ram = ramBytes.flatMap { $0 != changed.memory.sizeBytes ? $0 : nil }
        do {
            if let ram {
                try booted?.resize(ramBytes: ram)
                logger.info("vm.resize: RAM \(ByteSize.describe(changed.memory.sizeBytes)) → \(ByteSize.describe(ram))")
                changed.memory.sizeBytes = ram
                config = changed
            }
            if let cpus {
                try booted?.resize(vcpus: cpus)
                logger.info("vm.resize: \(changed.cpus.boot) → \(cpus) vCPUs")
                // What the next boot starts with, and what vm.info reports, as Cloud Hypervisor does.
                changed.cpus.boot = cpus
                config = changed
            }
        } catch {
            // What the request asks that this VM cannot be is the caller's to fix.
            if case .config = error { throw APIFailure(.invalidConfig, "\(error)") }
            throw APIFailure(.failed, "vm.resize: \(error)")
        }
        return .done
    }

    /// vm.add-disk, vm.add-net, vm.add-device: before the first boot the
    /// device joins the configuration (204); into the running VM it is
    /// also plugged and announced (200, PciDeviceInfo).
    private func add(_ request: APIRequest) throws(APIFailure) -> APIAnswer {
        let endpoint = Self.endpoint(request)
        guard var changed = config else { throw APIFailure(.noVM, "\(endpoint): no VM is created (vm.create first)") }
        let hotplug = booted != nil
        guard hotplug || state == .created else {
            throw APIFailure(.notSupported, "\(endpoint) into a VM that was shut down is not supported yet: vm.boot it first, or vm.delete and vm.create")
        }
        // Cloud Hypervisor's id when none is given (`_disk3`…); a taken one is refused.
        let ids = Set(changed.disks.compactMap(\.id) + changed.nets.compactMap(\.id) + changed.devices.compactMap(\.id)
                      + changed.fs.compactMap(\.id) + [changed.vsock?.id].compactMap { $0 })
        var added = request
        switch request {
        case .vmAddDisk(var disk):
            disk.id = disk.id ?? changed.nextDeviceID("_disk")
            changed.disks.append(disk)
            added = .vmAddDisk(disk)
        case .vmAddNet(var net):
            net.id = net.id ?? changed.nextDeviceID("_net")
            changed.nets.append(net)
            added = .vmAddNet(net)
        case .vmAddDevice(var device):
            if hotplug, changed.devices.contains(where: { $0.bdf == device.bdf }) {
                throw APIFailure(.duplicate, "\(endpoint): \(device.bdf) is already assigned to this VM")
            }
            device.id = device.id ?? changed.nextDeviceID("_vfio")
            changed.devices.append(device)
            added = .vmAddDevice(device)
        case .vmAddVsock(var vsock):
            // Cloud Hypervisor: one vsock per VM ("Too many vsock devices").
            if changed.vsock != nil {
                throw APIFailure(.invalidConfig, "\(endpoint): the VM has a vsock already (one per VM): vm.remove-device it first")
            }
            vsock.id = vsock.id ?? changed.nextDeviceID("_vsock")
            changed.vsock = vsock
            added = .vmAddVsock(vsock)
        case .vmAddFs(var share):
            share.id = share.id ?? changed.nextDeviceID("_fs")
            changed.fs.append(share)
            added = .vmAddFs(share)
        default:
            throw APIFailure(.failed, "\(endpoint): not a device to add")
        }
        let id = added.deviceID ?? ""
        if ids.contains(id) { throw APIFailure(.duplicate, "\(endpoint): the id '\(id)' is taken") }
        do {
            try changed.validate()
        } catch {
            throw APIFailure(.invalidConfig, "\(endpoint): \(error)")
        }
        guard hotplug else {
            config = changed
            return .done
        }
        let address: PCIAddress
        do {
            address = try plug(added)
            // A hot-added network's descriptors are its tap's copies (`plug`).
            if case .vmAddNet = added, let tap = resources?.taps.last { changed.nets[changed.nets.count - 1].fds = tap.fds }
        } catch {
            throw APIFailure(.failed, "\(endpoint): \(error)")
        }
        config = changed
        logger.info("\(endpoint): \(id) at \(address)")
        return .body(.object(["id": .string(id), "bdf": .string(address.description)]))
    }

    /// Hotplug into the running VM, put in a free slot and announced: a
    /// disk opened; a tap; or a host device opened through VFIO, its group
    /// in the VMM's one container. Returns its address.
    private func plug(_ request: APIRequest) throws(VMMError) -> PCIAddress {
        guard let vm = booted, let sandbox, let resources else { throw .system(SystemError("the VM is not running", errno: ESRCH)) }
        switch request {
        case .vmAddDisk(let disk):
            let backend = try DiskBackend(disk)
            let address = try vm.hotAdd(disk: backend, index: resources.disks.count, sandbox: sandbox)
            resources.disks.append(backend)
            return address
        case .vmAddDevice(let device):
            let opened = try VFIODevice.open([device], container: &resources.vfio, beside: resources.assigned)
            let address = try vm.hotAdd(device: opened[0])
            resources.assigned.append(contentsOf: opened)
            return address
        case .vmAddVsock(let vsock):
            let socket = try VsockSocket(vsock)
            let address = try vm.hotAdd(vsock: socket, sandbox: sandbox)
            resources.vsock = socket
            return address
        case .vmAddFs(let share):
            let backend = try FsBackend(share)
            let address = try vm.hotAdd(fs: backend, index: resources.fs.count, sandbox: sandbox)
            resources.fs.append(backend)
            return address
        case .vmAddNet(let net):
            // The tap takes copies of the descriptors the request brought,
            // which close here once it is plugged, or with the refused request.
            var owned = net
            owned.fds = []
            for fd in net.fds {
                let copy = fcntl(fd, F_DUPFD_CLOEXEC, 3)
                guard copy >= 0 else {
                    let error = errno
                    owned.fds.forEach { close($0) }
                    throw .system(SystemError("vm.add-net: copy descriptor \(fd)", errno: error))
                }
                owned.fds.append(copy)
            }
            let tap: Tap
            do {
                tap = try Tap(owned)
            } catch {
                owned.fds.forEach { close($0) }
                throw error
            }
            let address = try vm.hotAdd(tap: tap, index: resources.taps.count, sandbox: sandbox)
            resources.taps.append(tap)
            net.fds.forEach { close($0) }
            return address
        default:
            throw .system(SystemError("not a device to plug", errno: EINVAL))
        }
    }

    /// vm.remove-device: a VM not booted yet drops it from its
    /// configuration; a running one asks the guest, whose eject ends the
    /// device (`ejected`).
    private func remove(_ id: String) throws(APIFailure) -> APIAnswer {
        guard var changed = config else { throw APIFailure(.noVM, "vm.remove-device: no VM is created (vm.create first)") }
        if booted != nil { return try requestRemoval(id) }
        guard state == .created else {
            throw APIFailure(.notSupported, "vm.remove-device from a VM that was shut down is not supported yet: vm.boot it first, or vm.delete and vm.create")
        }
        if let index = changed.nets.firstIndex(where: { $0.id == id }) {
            changed.nets.remove(at: index).fds.forEach { close($0) }
        } else if let index = changed.disks.firstIndex(where: { $0.id == id }) {
            changed.disks.remove(at: index)
        } else if let index = changed.devices.firstIndex(where: { $0.id == id }) {
            changed.devices.remove(at: index)
        } else if changed.vsock?.id == id {
            changed.vsock = nil
        } else if let index = changed.fs.firstIndex(where: { $0.id == id }) {
            changed.fs.remove(at: index)
        } else {
            throw APIFailure(.unknownDevice, "vm.remove-device: no device has the id '\(id)'")
        }
        config = changed
        return .done
    }

    /// The address of a device of the running VM: a disk, a network, a
    /// share, the vsock or an assigned device, from the command line or hot-added.
    private func address(of id: String, in config: VMConfig, vm: BootedVM, resources: LaunchResources) -> PCIAddress? {
        // The VMM's own devices (`__rng`, `__console`) are not the API's to remove.
        let virtio = config.disks.map(\.id) + config.nets.map(\.id) + config.fs.map(\.id) + [config.vsock?.id]
        if virtio.contains(id) { return vm.address(ofVirtio: id) }
        if let device = resources.assigned.first(where: { $0.config.id == id }) { return vm.address(of: device) }
        return nil
    }

    private func requestRemoval(_ id: String) throws(APIFailure) -> APIAnswer {
        guard let config, let vm = booted, let resources else { throw APIFailure(.failed, "vm.remove-device: the VM is not running") }
        guard let address = address(of: id, in: config, vm: vm, resources: resources) else {
            throw APIFailure(.unknownDevice, "vm.remove-device: no device has the id '\(id)'")
        }
        guard removing[address] == nil else { return .done }
        do {
            try vm.requestRemoval(address)
        } catch {
            throw APIFailure(.failed, "vm.remove-device: \(error)")
        }
        removing[address] = id
        return .done
    }

    /// The guest ejected slots or vCPUs: slots it was asked for go, with
    /// their disks; vCPUs go whether asked or not (the guest's to give).
    private func ejected() {
        guard let vm = booted else { return }
        let ejected = vm.takeEjected()
        for index in ejected.vcpus { logger.info("vCPU \(index) ejected by the guest") }
        for address in ejected.slots {
            guard let id = removing.removeValue(forKey: address) else {
                logger.warning("the guest ejected PCI slot \(address), which the VMM did not ask back: it stays")
                continue
            }
            do {
                try vm.remove(address)
            } catch {
                logger.error("vm.remove-device \(id): \(error)")
            }
            forget(id)
            logger.info("vm.remove-device: \(id) ejected by the guest from \(address)")
        }
    }

    /// Removals the guest did not answer before its VM ended: done now.
    private func finishRemovals() {
        for id in removing.values { forget(id) }
        removing.removeAll()
    }

    /// A removed device leaves the configuration and its files close (a
    /// `bind=auto` device goes back to its driver).
    private func forget(_ id: String) {
        if let index = config?.disks.firstIndex(where: { $0.id == id }) {
            config?.disks.remove(at: index)
            if let resources, index < resources.disks.count { resources.disks.remove(at: index) }
        } else if let index = config?.nets.firstIndex(where: { $0.id == id }) {
            config?.nets.remove(at: index)
            if let resources, index < resources.taps.count { resources.taps.remove(at: index) }
        } else if let index = config?.devices.firstIndex(where: { $0.id == id }) {
            config?.devices.remove(at: index)
            resources?.assigned.removeAll { $0.config.id == id }
        } else if config?.vsock?.id == id {
            config?.vsock = nil
            resources?.vsock = nil
        } else if let index = config?.fs.firstIndex(where: { $0.id == id }) {
            config?.fs.remove(at: index)
            if let resources, index < resources.fs.count { resources.fs.remove(at: index) }
        }
    }

    /// vm.info's `device_tree`: each PCI device by id with its address, in
    /// Cloud Hypervisor's node shape (its BAR resources not listed).
    private static func endpoint(_ request: APIRequest) -> String {
        switch request {
        case .vmAddDisk: "vm.add-disk"
        case .vmAddNet: "vm.add-net"
        case .vmAddVsock: "vm.add-vsock"
        case .vmAddFs: "vm.add-fs"
        default: "vm.add-device"
        }
    }
}
