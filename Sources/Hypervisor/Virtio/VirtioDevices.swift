import CVMMCore

#if canImport(Glibc)
import Glibc
#endif

/// One boot's virtio devices, each a PCI function on bus 0 of its segment:
/// the disks in the order given (so the first is the guest's /dev/vda), the
/// networks in the order given (eth0 first), the vsock if there is one, the
/// console unless it is off, and the rng; with a virtual IOMMU, the
/// virtio-iommu first, and each device with `iommu=on` behind it. Each
/// device has its own named thread.
final class VirtioDevices {
    /// Bus 0 of each PCI segment, by segment.
    private let buses: [PCIBus]
    private let vm: VirtualMachine
    let iommu: VirtualIOMMU?
    /// In the order added; `id` is the device's (vm.counters, vm.info, removal).
    private var devices: [(transport: OpaquePointer, kind: vmm_thread_kind, address: PCIAddress,
                           device: OpaquePointer, id: String?)] = []
    private var running = false

    init(vm: VirtualMachine, buses: [PCIBus], resources: LaunchResources, config: VMConfig, logger: Logger) throws(VMMError) {
        self.buses = buses
        self.vm = vm
        iommu = config.hasIOMMU ? try VirtualIOMMU(vm: vm, platform: config.platform) : nil
        if let iommu {
            iommu.address = try add(iommu.device, 0, vm: vm, kind: VMM_THREAD_VIRTIO_IOMMU, name: "the virtio-iommu", segment: 0,
                                    id: "__iommu")
            logger.info("virtio-iommu: at \(iommu.address!), segments behind it whole: \(iommu.segments)")
        }
        for (index, disk) in resources.disks.enumerated() {
            try addDisk(disk, index: index, logger: logger)
        }
        for (index, tap) in resources.taps.enumerated() {
            try addNet(tap, index: index, logger: logger)
        }
        for (index, share) in resources.fs.enumerated() {
            try addFs(share, index: index, logger: logger)
        }
        if let vsock = resources.vsock {
            try addVsock(vsock, logger: logger)
        }
        if let console = resources.consoleOutput {
            var device: OpaquePointer?
            let r = vmm_virtio_console_create(vm.handle, resources.consoleInputFD, console.fd, &device)
            try add(device, r, vm: vm, kind: VMM_THREAD_VIRTIO_CONSOLE, name: "--console", segment: config.consolePCISegment,
                    id: "__console", iommu: config.consoleIOMMU)
        }
        var rng: OpaquePointer?
        let r = vmm_virtio_rng_create(vm.handle, resources.rngSource, &rng)
        try add(rng, r, vm: vm, kind: VMM_THREAD_VIRTIO_RNG, name: "--rng", segment: config.rng.pciSegment, id: "__rng",
                iommu: config.rng.iommu)
    }

    /// A virtio-net on `tap`, named for its place in the list; returns its address.
    @discardableResult
    private func addNet(_ tap: Tap, index: Int, logger: Logger) throws(VMMError) -> PCIAddress {
        let name = "virtio-net\(index)"
        var device: OpaquePointer?
        let net = tap.config
        let m = tap.guestMAC.bytes
        let r = name.withCString { thread in
            tap.fds.withUnsafeBufferPointer { fds in
                var config = vmm_virtio_net_config(tap_fds: fds.baseAddress, queue_pairs: UInt16(net.queuePairs),
                                                   queue_size: UInt16(net.queueSize), mac: (m[0], m[1], m[2], m[3], m[4], m[5]),
                                                   mtu: UInt16(tap.mtu), offload_csum: net.offloadCsum,
                                                   offload_tso: net.offloadTSO, offload_ufo: net.offloadUFO, thread_name: thread)
                return vmm_virtio_net_create(vm.handle, &config, &device)
            }
        }
        let address = try add(device, r, vm: vm, kind: VMM_THREAD_VIRTIO_NET, name: "--net tap=\(tap.name)",
                              segment: net.pciSegment, id: net.id ?? "", iommu: net.iommu)
        logger.info("\(name): tap \(tap.name), MAC \(tap.guestMAC), MTU \(tap.mtu), \(net.queuePairs) queue pair(s), at \(address)")
        return address
    }

    /// A virtio-blk for `disk`, served here or by its vhost-user backend,
    /// named for its place in the list; returns its address.
    @discardableResult
    private func addDisk(_ disk: DiskBackend, index: Int, logger: Logger) throws(VMMError) -> PCIAddress {
        switch disk {
        case .image(let image): return try addDisk(image, index: index, logger: logger)
        case .vhostUser(let backend, let config): return try addVhostUserDisk(backend, config: config, index: index, logger: logger)
        }
    }

    private func addVhostUserDisk(_ backend: VhostUserBackend, config disk: DiskConfig, index: Int, logger: Logger) throws(VMMError) -> PCIAddress {
        let name = "vhost-blk\(index)"
        var device: OpaquePointer?
        let r = name.withCString { thread in
            var config = vmm_vhost_user_blk_config(backend: backend.handle, num_queues: UInt16(disk.numQueues),
                                                   queue_size: UInt16(disk.queueSize), thread_name: thread)
            return vmm_vhost_user_blk_create(vm.handle, &config, &device)
        }
        if r == -ENOTSUP {
            throw .config(.unusable(option: "--disk socket=\(disk.vhostSocket ?? "")", reason: "the backend does not give the disk's configuration (vhost-user CONFIG): it is not a vhost-user-blk backend"))
        }
        let address = try add(device, r, vm: vm, kind: VMM_THREAD_VHOST_USER, name: "--disk vhost_user=on,socket=\(disk.vhostSocket ?? "")",
                              segment: disk.pciSegment, id: disk.id ?? "")
        logger.info("\(name): vhost-user backend \(disk.vhostSocket ?? ""), \(disk.numQueues) queue(s), at \(address)")
        return address
    }

    private func addDisk(_ disk: DiskImage, index: Int, logger: Logger) throws(VMMError) -> PCIAddress {
        let name = "virtio-blk\(index)"
        var device: OpaquePointer?
        let r = name.withCString { thread in
            disk.serial.withCString { serial in
                var config = vmm_virtio_blk_config(fd: disk.fd, size_bytes: disk.sizeBytes, readonly: disk.config.readonly,
                                                   num_queues: UInt16(disk.config.numQueues),
                                                   queue_size: UInt16(disk.config.queueSize), serial: serial,
                                                   thread_name: thread)
                return vmm_virtio_blk_create(vm.handle, &config, &device)
            }
        }
        let address = try add(device, r, vm: vm, kind: VMM_THREAD_VIRTIO_BLK, name: "--disk path=\(disk.config.path)",
                              segment: disk.config.pciSegment, id: disk.config.id ?? "", iommu: disk.config.iommu)
        let engine = vmm_virtio_blk_is_async(device) ? "io_uring" : "synchronous I/O (io_uring unavailable)"
        logger.info("\(name): \(disk.config.path), \(ByteSize.describe(disk.sizeBytes)), \(disk.config.numQueues) queue(s), \(engine), at \(address)")
        return address
    }

    /// A virtio-fs on `share`'s backend, named for its place in the list; returns its address.
    @discardableResult
    private func addFs(_ share: FsBackend, index: Int, logger: Logger) throws(VMMError) -> PCIAddress {
        let name = "virtio-fs\(index)"
        var device: OpaquePointer?
        let r = name.withCString { thread in
            share.config.tag.withCString { tag in
                var config = vmm_virtio_fs_config(backend: share.backend.handle, tag: tag, request_queues: UInt16(share.config.numQueues),
                                                  queue_size: UInt16(share.config.queueSize), thread_name: thread)
                return vmm_virtio_fs_create(vm.handle, &config, &device)
            }
        }
        let address = try add(device, r, vm: vm, kind: VMM_THREAD_VHOST_USER, name: "--fs tag=\(share.config.tag)",
                              segment: share.config.pciSegment, id: share.config.id ?? "")
        logger.info("\(name): tag \(share.config.tag), backend \(share.config.socket), \(share.config.numQueues) request queue(s), at \(address)")
        return address
    }

    /// The virtio-vsock on `socket`; returns its address.
    @discardableResult
    private func addVsock(_ socket: VsockSocket, logger: Logger) throws(VMMError) -> PCIAddress {
        var device: OpaquePointer?
        let r = socket.config.socket.withCString { path in
            "virtio-vsock".withCString { thread in
                var config = vmm_virtio_vsock_config(guest_cid: UInt64(socket.config.cid), listen_fd: socket.fd,
                                                     socket_path: path, thread_name: thread)
                return vmm_virtio_vsock_create(vm.handle, &config, &device)
            }
        }
        let address = try add(device, r, vm: vm, kind: VMM_THREAD_VIRTIO_VSOCK, name: "--vsock socket=\(socket.config.socket)",
                              segment: socket.config.pciSegment, id: socket.config.id ?? "", iommu: socket.config.iommu)
        logger.info("virtio-vsock: CID \(socket.config.cid), host socket \(socket.config.socket), at \(address)")
        return address
    }

    /// `iommu`: the device behind the virtual IOMMU, its endpoint named
    /// by the address it takes, before its thread starts.
    @discardableResult
    private func add(_ device: OpaquePointer?, _ created: Int32, vm: VirtualMachine, kind: vmm_thread_kind,
                     name: String, segment: Int, id: String? = nil, iommu behind: Bool = false) throws(VMMError) -> PCIAddress {
        guard created == 0, let device else { throw .system(SystemError("\(name): create the device", returned: created)) }
        var transport: OpaquePointer?
        let r = vmm_virtio_pci_create(vm.handle, device, &transport)
        guard r == 0, let transport else { throw .system(SystemError("\(name): create its PCI function", returned: r)) }
        var placed: PCIAddress?
        do throws(VMMError) {
            if kind != VMM_THREAD_VIRTIO_IOMMU { try VirtualIOMMU.check(iommu, behind: behind, segment: segment, name: name) }
            let address = try buses.bus(segment: segment, for: name).add(vmm_virtio_pci_function(transport), name: name)
            placed = address
            if behind, let iommu {
                vmm_virtio_set_iommu(device, try iommu.attach(address, container: -1, name: name))
            }
            devices.append((transport, kind, address, device, id))
            return address
        } catch {
            if let placed { buses[placed.segment].remove(slot: placed.slot) }
            vmm_virtio_pci_destroy(transport)
            throw error
        }
    }

    /// Hotplug: a disk into the running VM, its thread started; returns
    /// the address it took. The guest learns of it through ACPI (the caller).
    /// `held`: the VM is paused, and the new thread is held like the others.
    func hotAddDisk(_ disk: DiskBackend, index: Int, filter: SeccompFilter?, held: Bool, logger: Logger) throws(VMMError) -> PCIAddress {
        try startHotAdded(try addDisk(disk, index: index, logger: logger), filter: filter, held: held)
    }

    /// Hotplug: a network on `tap` into the running VM, as `hotAddDisk`.
    func hotAddNet(_ tap: Tap, index: Int, filter: SeccompFilter?, held: Bool, logger: Logger) throws(VMMError) -> PCIAddress {
        try startHotAdded(try addNet(tap, index: index, logger: logger), filter: filter, held: held)
    }

    /// Hotplug: a virtio-fs into the running VM, as `hotAddDisk`.
    func hotAddFs(_ share: FsBackend, index: Int, filter: SeccompFilter?, held: Bool, logger: Logger) throws(VMMError) -> PCIAddress {
        try startHotAdded(try addFs(share, index: index, logger: logger), filter: filter, held: held)
    }

    /// RAM the VM just gained reaches every vhost-user backend.
    func syncMemory() throws(VMMError) {
        for entry in devices where entry.kind == VMM_THREAD_VHOST_USER {
            let r = vmm_vhost_user_sync_memory(entry.device)
            guard r == 0 else { throw .system(SystemError("send the new RAM to the vhost-user backend of \(entry.id ?? "")", returned: r)) }
        }
    }

    /// Hotplug: the vsock into the running VM, as `hotAddDisk`.
    func hotAddVsock(_ socket: VsockSocket, filter: SeccompFilter?, held: Bool, logger: Logger) throws(VMMError) -> PCIAddress {
        try startHotAdded(try addVsock(socket, logger: logger), filter: filter, held: held)
    }

    private func startHotAdded(_ address: PCIAddress, filter: SeccompFilter?, held: Bool) throws(VMMError) -> PCIAddress {
        guard let entry = devices.last, entry.address == address else { return address }
        do {
            try FaultInjection.check(.deviceThread)
        } catch {
            remove(address)
            throw error
        }
        let r = vmm_virtio_pci_start(entry.transport, filter == nil ? nil : vmm_seccomp_thread_init, filter?.opaque)
        guard r == 0 else {
            remove(address)
            throw .system(SystemError("start the \(String(cString: vmm_thread_kind_name(entry.kind))) thread", returned: r))
        }
        if held { vmm_virtio_pci_pause(entry.transport) }
        return address
    }

    /// Cloud Hypervisor's vm.counters: each disk's and network's, by id.
    func counters() -> [String: [String: UInt64]] {
        var result: [String: [String: UInt64]] = [:]
        for entry in devices where entry.kind == VMM_THREAD_VIRTIO_BLK || entry.kind == VMM_THREAD_VIRTIO_NET {
            guard let id = entry.id else { continue }
            var values = [UInt64](repeating: 0, count: 4)
            if entry.kind == VMM_THREAD_VIRTIO_BLK {
                vmm_virtio_blk_counters(entry.device, &values)
                result[id] = ["read_bytes": values[0], "read_ops": values[1], "write_bytes": values[2], "write_ops": values[3]]
            } else if entry.kind == VMM_THREAD_VIRTIO_NET {
                vmm_virtio_net_counters(entry.device, &values)
                result[id] = ["rx_bytes": values[0], "rx_frames": values[1], "tx_bytes": values[2], "tx_frames": values[3]]
            }
        }
        return result
    }

    /// Each device's id (Cloud Hypervisor's names: `_disk0`…, `__console`,
    /// `__rng`) and address, for vm.info's device tree.
    var addresses: [(id: String, address: PCIAddress)] { devices.compactMap { entry in entry.id.map { ($0, entry.address) } } }

    /// The address of the device with this id, if any.
    func address(of id: String) -> PCIAddress? { devices.first { $0.id == id }?.address }

    /// Hot-unplug, once the guest let go: call with the vCPUs paused.
    func remove(_ address: PCIAddress) {
        guard let index = devices.firstIndex(where: { $0.address == address }) else { return }
        let device = devices.remove(at: index)
        buses[address.segment].remove(slot: address.slot)
        if running { vmm_virtio_pci_stop(device.transport) }
        iommu?.detach(address)
        vmm_virtio_pci_destroy(device.transport)
    }

    /// Starts every device thread; each installs its kind's seccomp filter
    /// (from `filters`, when seccomp is on) before it reads a queue.
    func start(filters: [vmm_thread_kind: SeccompFilter]) throws(VMMError) {
        running = true
        for device in devices {
            let filter = filters[device.kind]
            let r = vmm_virtio_pci_start(device.transport, filter == nil ? nil : vmm_seccomp_thread_init, filter?.opaque)
            guard r == 0 else {
                throw .system(SystemError("start the \(String(cString: vmm_thread_kind_name(device.kind))) thread", returned: r))
            }
        }
    }

    /// vm.pause: every device thread held between two requests; call once
    /// the vCPUs are parked. `resume` before they run again.
    func pause() {
        for device in devices { vmm_virtio_pci_pause(device.transport) }
    }

    func resume() {
        for device in devices { vmm_virtio_pci_resume(device.transport) }
    }

    /// Joins the device threads; call once the vCPUs are joined.
    func stop() {
        for device in devices { vmm_virtio_pci_stop(device.transport) }
        running = false
    }

    /// The virtio-iommu goes last, its endpoints (assigned devices' too) before it.
    deinit {
        iommu?.detachAll()
        for device in devices.reversed() { vmm_virtio_pci_destroy(device.transport) }
    }
}

extension VirtioDevices {
    /// Snapshot: each device's state, named by its address and id, from a
    /// paused VM. A device whose state lives outside the VMM is refused by name.
    /// The first device whose state lives outside the VMM (a vhost-user
    /// backend's rings, a vsock's host connections, the guest's IOMMU
    /// domains), named for a refusal.
    func unsaveable() -> String? {
        devices.first { [VMM_THREAD_VHOST_USER, VMM_THREAD_VIRTIO_VSOCK, VMM_THREAD_VIRTIO_IOMMU].contains($0.kind) }.map { entry in
            "\(String(cString: vmm_thread_kind_name(entry.kind))) device \(entry.id ?? "") (at \(entry.address))"
        }
    }

    func save(into file: inout StateFile) throws(VMMError) {
        for entry in devices {
            var state = vmm_virtio_pci_state()
            let r = vmm_virtio_pci_save(entry.transport, &state)
            guard r != -ENOTSUP else {
                throw .config(.notSupported("a snapshot of a VM with \(String(cString: vmm_thread_kind_name(entry.kind))) device \(entry.id ?? "") (at \(entry.address))"))
            }
            guard r == 0 else { throw .system(SystemError("snapshot: save the device at \(entry.address)", returned: r)) }
            file.append(Self.record(entry.address, entry.id), version: VMM_VIRTIO_STATE_VERSION, state)
        }
    }

    /// Restore, before the device threads start: the same devices at the
    /// same addresses, each held until vm.resume.
    func restore(from file: StateFile) throws(VMMError) {
        let names = Set(devices.map { Self.record($0.address, $0.id) })
        if let stray = file.names(prefix: "virtio ").first(where: { !names.contains($0) }) {
            throw .config(.unusable(option: "--restore", reason: "the snapshot has a device this configuration does not place there (\(stray.dropFirst(7))): it was changed since the snapshot"))
        }
        for entry in devices {
            let name = Self.record(entry.address, entry.id)
            var state = try file.load(name, version: VMM_VIRTIO_STATE_VERSION, as: vmm_virtio_pci_state.self)
            let r = vmm_virtio_pci_restore(entry.transport, &state)
            guard r != -ENODEV else {
                throw .config(.unusable(option: "--restore", reason: "the device at \(entry.address) is not the one the snapshot has there"))
            }
            guard r == 0 else { throw .system(SystemError("restore the device at \(entry.address)", returned: r)) }
        }
    }

    private static func record(_ address: PCIAddress, _ id: String?) -> String { "virtio \(address) \(id ?? "")" }
}
