import CVMMCore

#if canImport(Glibc)
import Glibc
#endif

/// One boot of a configuration: the VM, its devices and threads, running
/// from `init` until `stop()`. A guest reset or an API reboot makes a new
/// one from the same launch resources.
final class BootedVM {
    let vm: VirtualMachine
    let platform: Platform
    let hotplug: HotplugControllers
    private let logger: Logger
    let virtio: VirtioDevices
    /// The assigned devices in this boot; made with the first.
    private(set) var assigned: AssignedDevices?
    /// Bus 0 of each PCI segment (`--platform num_pci_segments`), by segment.
    private let buses: [PCIBus]
    /// Standard input for the serial port, with `--serial tty`.
    let input: SerialInput?
    private var stopped = false
    /// Between vm.pause and vm.resume.
    private(set) var isPaused = false
    /// vCPUs with a running thread: 0..<boot, then what vm.resize changes.
    private(set) var vcpuThreads: Set<Int>
    /// vCPUs the guest was asked to give back and has not ejected yet.
    private(set) var vcpusLeaving: Set<Int> = []
    private let maxVCPUs: Int
    /// A restored or migrated VM's taps and guest MACs, announced on the
    /// host side (RARP) when it first runs.
    private var announce: [(fd: Int32, mac: MACAddress)] = []
    /// RAM added by memory hotplug in this boot, and the slots it took.
    private(set) var hotAddedRAM: UInt64 = 0
    private var memorySlots = 0

    /// `restoring`: the VM comes from a snapshot instead of the kernel,
    /// paused (vCPUs parked, device threads held) until `resume`.
    init(config: VMConfig, resources: LaunchResources, sandbox: Sandbox, logger: Logger,
         restoring snapshot: RestoreSource? = nil) throws(VMMError) {
        self.logger = logger
        let vm = try VirtualMachine(kvm: resources.kvm, memory: config.memory, arena: resources.ramArena,
                                    ramFiles: snapshot?.takeRAMFiles() ?? [])
        self.vm = vm
        try vm.createVCPUs(config.cpus)
        vcpuThreads = Set(0..<config.cpus.boot)
        maxVCPUs = config.cpus.max
        let platform = try Platform(vm: vm, serialOutput: resources.serialOutput)
        self.platform = platform
        hotplug = try HotplugControllers(vm: vm, platform: platform, vcpus: config.cpus.boot, pciSegments: config.platform.pciSegments)
        let segments = config.platform.pciSegments
        if config.memory.hotplugBytes > 0 {
            // The guest's CPUs reach as far as the host's: RAM, the hotplug
            // room and the 64-bit PCI window above it must fit.
            let top = GuestLayout.pciMMIO64(memoryBytes: config.memory.sizeBytes, hotplugBytes: config.memory.hotplugBytes,
                                            segment: segments - 1, of: segments).end
            let bits = vmm_phys_address_bits()
            guard bits >= 64 || top <= UInt64(1) << bits else {
                throw .config(.invalidValue(option: "--memory", key: "hotplug_size", value: ByteSize.describe(config.memory.hotplugBytes),
                                            reason: "RAM, this much hotplug room and the PCI window end at \(ByteSize.describe(top)), past what \(bits)-bit physical addresses reach: give a smaller hotplug_size"))
            }
        }
        let buses = try (0..<segments).map { (segment) throws(VMMError) in try PCIBus(vm: vm, segment: segment, of: segments) }
        self.buses = buses
        virtio = try VirtioDevices(vm: vm, buses: buses, resources: resources, config: config, logger: logger)
        if !resources.assigned.isEmpty {
            let assigned = AssignedDevices(vm: vm, buses: buses, iommu: virtio.iommu)
            for device in resources.assigned { _ = try assigned.add(device) }
            self.assigned = assigned
        }
        if let snapshot {
            try snapshot.apply(to: vm, vcpus: config.cpus.boot, platform: platform, virtio: virtio)
            isPaused = true
            announce = resources.taps.compactMap { tap in tap.fds.first.map { ($0, tap.guestMAC) } }
            logger.info("restored from \(snapshot.origin): \(config.cpus.boot) vCPUs, \(ByteSize.describe(config.memory.sizeBytes)) RAM, paused")
        } else {
            try KernelLoader(vm: vm).load(kernel: resources.kernel, initramfs: resources.initramfs, cmdline: config.cmdline,
                                          cpus: config.cpus, platform: config.platform, viot: virtio.iommu?.bootDescription())
            logger.info("booting: \(config.cpus.boot) vCPUs, \(ByteSize.describe(config.memory.sizeBytes)) RAM")
        }

        // Device threads first: a vCPU's first kick finds its device listening.
        do {
            try virtio.start(filters: sandbox.deviceFilters)
            if let filter = sandbox.vcpuFilter {
                try vm.start(threadInit: vmm_seccomp_thread_init, opaque: filter.opaque)
            } else {
                try vm.start()
            }
        } catch {
            vm.requestStop()
            vm.joinVCPUs()
            virtio.stop()
            throw error
        }
        input = resources.serialInputFD.flatMap { fd in platform.serial.map { SerialInput(fd: fd, uart: $0) } }
    }

    /// Assigned devices leave the virtual IOMMU before it goes with `virtio`.
    deinit {
        stop()
        assigned = nil
    }

    /// Ends the boot: every vCPU and device thread stopped and joined.
    /// Returns why the guest stopped, if it stopped on its own.
    @discardableResult
    func stop() -> StopReason {
        if !stopped {
            stopped = true
            vm.requestStop()
            vm.joinVCPUs()
            virtio.stop()
        }
        return StopReason(vm.stopInfo)
    }

    func pressPowerButton() throws(VMMError) { try platform.pressPowerButton() }

    /// vm.counters: each disk's and network's, by id.
    func counters() -> [String: [String: UInt64]] { virtio.counters() }

    /// Readable when the guest ejected a slot.
    var ejectFD: Int32 { hotplug.ejectFD }

    /// Hotplug: `disk` (the launch's `index`th) into a free slot of its
    /// segment, then the guest told; returns its address.
    /// Into a paused VM, the device thread is held like the others until vm.resume.
    func hotAdd(disk: DiskBackend, index: Int, sandbox: Sandbox) throws(VMMError) -> PCIAddress {
        try announce(hotAdded: try virtio.hotAddDisk(disk, index: index, filter: sandbox.deviceFilters[VMM_THREAD_VIRTIO_BLK],
                                                     held: isPaused, logger: logger))
    }

    /// Hotplug: a network on `tap` (the launch's `index`th) into a free
    /// slot of its segment, then the guest told; returns its address.
    func hotAdd(tap: Tap, index: Int, sandbox: Sandbox) throws(VMMError) -> PCIAddress {
        try announce(hotAdded: try virtio.hotAddNet(tap, index: index, filter: sandbox.deviceFilters[VMM_THREAD_VIRTIO_NET],
                                                    held: isPaused, logger: logger))
    }

    /// Hotplug: a virtio-fs on `share` (the launch's `index`th) into a free
    /// slot of its segment, then the guest told; returns its address.
    func hotAdd(fs share: FsBackend, index: Int, sandbox: Sandbox) throws(VMMError) -> PCIAddress {
        try announce(hotAdded: try virtio.hotAddFs(share, index: index, filter: sandbox.deviceFilters[VMM_THREAD_VHOST_USER],
                                                   held: isPaused, logger: logger))
    }

    /// Hotplug: the vsock on `socket` into a free slot of its segment, then
    /// the guest told; returns its address.
    func hotAdd(vsock socket: VsockSocket, sandbox: Sandbox) throws(VMMError) -> PCIAddress {
        try announce(hotAdded: try virtio.hotAddVsock(socket, filter: sandbox.deviceFilters[VMM_THREAD_VIRTIO_VSOCK],
                                                      held: isPaused, logger: logger))
    }

    /// The last step of a hotplug; if the guest cannot be told, the device
    /// leaves its slot again (thread, BARs, DMA mappings), as if never added.
    private func announce(hotAdded address: PCIAddress) throws(VMMError) -> PCIAddress {
        do {
            try FaultInjection.check(.pciAnnounce)
            try hotplug.announce(address, arrived: true)
        } catch {
            hotplug.withdraw(address)
            do {
                try remove(address)
            } catch let undo {
                logger.error("hotplug into \(address) failed and could not be undone: \(undo)")
            }
            throw error
        }
        return address
    }

    /// Hotplug: an assigned device into a free slot of its segment, then the guest told.
    func hotAdd(device: VFIODevice) throws(VMMError) -> PCIAddress {
        try announce(hotAdded: try assign(device))
    }

    /// `device` into the next free slot of its segment; returns its address.
    private func assign(_ device: VFIODevice) throws(VMMError) -> PCIAddress {
        let assigned = self.assigned ?? AssignedDevices(vm: vm, buses: buses, iommu: virtio.iommu)
        self.assigned = assigned
        return try assigned.add(device)
    }

    /// Every PCI device of the VM with its id (given, or assigned when its
    /// configuration was accepted: `DeviceIDs.swift`), address and BARs:
    /// the virtio devices, then assigned ones.
    func pciDevices() -> [DeviceTree.PCIDevice] {
        let virtio = self.virtio.addresses.map { (id: $0.id, address: $0.address, virtio: true) }
        let assigned = (assigned?.addresses ?? []).map { (id: $0.device.config.id ?? "", address: $0.address, virtio: false) }
        return (virtio + assigned).map {
            DeviceTree.PCIDevice(id: $0.id, address: $0.address, bars: buses[$0.address.segment].bars(slot: $0.address.slot),
                                 virtio: $0.virtio)
        }
    }

    /// The address of a virtio device (disk, network, share, vsock) by its id.
    func address(ofVirtio id: String) -> PCIAddress? { virtio.address(of: id) }

    func address(of device: VFIODevice) -> PCIAddress? { assigned?.address(of: device) }

    /// Asks the guest to let go of the slot at `address`; its _EJ0 answers (`takeEjected`).
    func requestRemoval(_ address: PCIAddress) throws(VMMError) { try hotplug.announce(address, arrived: false) }

    /// What the guest ejected since the last call: the slots, for the
    /// caller to remove; the vCPUs, whose threads are stopped and joined.
    func takeEjected() -> (slots: [PCIAddress], vcpus: [Int]) {
        let slots = hotplug.takeEjected()
        return (slots, unplugEjectedVCPUs())
    }

    /// Takes the device at `address` out with every vCPU parked, so none is
    /// inside one of its handlers, then lets the guest run on unless the
    /// API had it paused already.
    func remove(_ address: PCIAddress) throws(VMMError) {
        try quiesced {
            virtio.remove(address)
            assigned?.remove(address)
        }
    }

    /// Runs `change` with every vCPU parked (and, for `devicesToo`, every
    /// device thread held), so none is inside a handler or a guest buffer
    /// it changes. Parked without holding the guest's clock: an unplug is
    /// no pause, and twenty of them must not set the guest's time back.
    private func quiesced(devicesToo: Bool = false, _ change: () -> Void) throws(VMMError) {
        if !isPaused {
            let r = vmm_vcpus_quiesce(vm.handle)
            guard r == 0 else {
                vmm_vcpus_release(vm.handle)
                throw .system(SystemError(r == -ETIMEDOUT ? "a vCPU did not stop within 5 s" : "park the vCPUs", returned: r))
            }
            if devicesToo { virtio.pause() }
        }
        change()
        if !isPaused {
            if devicesToo { virtio.resume() }
            vmm_vcpus_release(vm.handle)
        }
    }

    /// vm.resize: the guest is to have vCPUs 0..<count. Those it lacks
    /// start and are announced (the guest onlines them); those above are
    /// asked back, and go when the guest ejects them (`takeEjected`).
    /// A failure part-way stops the threads it started and leaves the
    /// guest's view as it was.
    func resize(vcpus count: Int) throws(VMMError) {
        unplugEjectedVCPUs()
        // Started now, and kept: asked back earlier, wanted again.
        var started: [Int] = [], kept: [Int] = []
        do {
            for index in 0..<count where !hotplug.isPresent(vcpu: index) || vcpusLeaving.contains(index) {
                if vcpuThreads.contains(index) {
                    kept.append(index)
                } else {
                    try vm.plugVCPU(index)
                    vcpuThreads.insert(index)
                    started.append(index)
                }
            }
            if !started.isEmpty || !kept.isEmpty { try FaultInjection.check(.vcpuAnnounce) }
            try hotplug.announce(vcpus: started + kept, arrived: true)
        } catch {
            hotplug.withdraw(vcpus: started, leaving: kept)
            for index in started {
                vm.unplugVCPU(index)
                vcpuThreads.remove(index)
            }
            throw error
        }
        vcpusLeaving.subtract(kept)
        let leaving = (count..<maxVCPUs).filter { hotplug.isPresent(vcpu: $0) && !vcpusLeaving.contains($0) }
        try hotplug.announce(vcpus: leaving, arrived: false)
        vcpusLeaving.formUnion(leaving)
    }

    /// vm.resize of RAM to `total` bytes: the growth (a multiple of 128M,
    /// within hotplug_size) mapped after what was added before, made
    /// DMA-able for every assigned device, then announced in the next
    /// memory hotplug slot. RAM is never taken back (nor by Cloud
    /// Hypervisor's ACPI hotplug).
    func resize(ramBytes total: UInt64) throws(VMMError) {
        let current = vm.memoryBytes + hotAddedRAM
        func refuse(_ reason: String) -> VMMError {
            .config(.invalidValue(option: "vm.resize", key: "desired_ram", value: String(total), reason: reason))
        }
        guard vm.hotplugBytes > 0 else { throw refuse("the VM has no room for memory hotplug: create it with memory.hotplug_size") }
        guard total > current else { throw refuse("below the \(current) bytes the VM has: RAM is only ever added") }
        let added = total - current
        guard added % MemoryConfig.hotplugGranule == 0 else {
            throw refuse("adds \(added) bytes: RAM grows by multiples of 128M (Linux's memory block)")
        }
        guard hotAddedRAM + added <= vm.hotplugBytes else {
            throw refuse("past the VM's \(vm.memoryBytes) bytes and hotplug_size \(vm.hotplugBytes)")
        }
        guard memorySlots < Int(VMM_MEM_HOTPLUG_SLOTS) else {
            throw refuse("all \(VMM_MEM_HOTPLUG_SLOTS) memory hotplug slots are used in this boot: reboot, which starts with all the RAM")
        }
        let gpa = GuestLayout.hotplugRAM(memoryBytes: vm.memoryBytes, hotplugBytes: vm.hotplugBytes).start + hotAddedRAM
        let region = try vm.addRAM(at: gpa, size: added)
        var mapped = false
        do {
            if let assigned {
                try FaultInjection.check(.ramDMA)
                try assigned.mapDMA(from: region)
                mapped = true
            }
            try virtio.syncMemory()
            try FaultInjection.check(.ramAnnounce)
            try hotplug.announce(memorySlot: memorySlots, base: gpa, size: added)
        } catch {
            // Undone in reverse, the RAM last, with nothing of the guest's running.
            hotplug.withdraw(memorySlot: memorySlots)
            if mapped { assigned?.unmapDMA(from: region) }
            do {
                try quiesced(devicesToo: true) { vm.removeLastRAM() }
            } catch let undo {
                logger.error("memory hotplug failed and its RAM could not be taken back: \(undo)")
            }
            throw error
        }
        hotAddedRAM += added
        memorySlots += 1
    }

    /// The vCPUs that run a thread but the guest no longer has (its _EJ0):
    /// their threads stopped and joined. Returns them.
    @discardableResult
    private func unplugEjectedVCPUs() -> [Int] {
        let ejected = vcpuThreads.filter { !hotplug.isPresent(vcpu: $0) }.sorted()
        for index in ejected {
            vm.unplugVCPU(index)
            vcpuThreads.remove(index)
            vcpusLeaving.remove(index)
        }
        return ejected
    }

    /// vm.pause: the vCPUs parked, then the device threads held (a vCPU
    /// may be waiting on one to finish a reset), so nothing of the guest's
    /// moves until `resume`.
    func pause() throws(VMMError) {
        try parkVCPUs()
        virtio.pause()
        isPaused = true
    }

    /// Devices first: a vCPU's first kick finds its device listening.
    func resume() throws(VMMError) {
        virtio.resume()
        isPaused = false
        try unparkVCPUs()
        for (fd, mac) in announce {
            let r = vmm_tap_announce(fd, mac.bytes)
            if r != 0 { logger.warning("announce \(mac) on its tap after the restore: \(String(cString: strerror(-r)))") }
        }
        announce = []
    }

    private func parkVCPUs() throws(VMMError) {
        let r = vmm_vm_pause(vm.handle)
        guard r == 0 else {
            _ = vmm_vm_resume(vm.handle)
            throw .system(SystemError(r == -ETIMEDOUT ? "pause: a vCPU did not stop within 5 s" : "pause the vCPUs", returned: r))
        }
    }

    private func unparkVCPUs() throws(VMMError) {
        let r = vmm_vm_resume(vm.handle)
        guard r == 0 else { throw .system(SystemError("resume: give the guest its clock back", returned: r)) }
    }
}
