import CVMMCore
import Logging

#if canImport(Glibc)
import Glibc
#endif

/// One boot's virtio devices, each a PCI function on bus 0: the disks in
/// the order given (so the first is the guest's /dev/vda), the networks in
/// the order given (eth0 first), the console unless it is off, and the rng. Each device has its own named thread.
final class VirtioDevices {
    private let bus: PCIBus
    /// (transport, thread kind), in slot order.
    private var devices: [(transport: OpaquePointer, kind: vmm_thread_kind)] = []
    private var running = false

    init(vm: VirtualMachine, bus: PCIBus, resources: LaunchResources, logger: Logger) throws(VMMError) {
        self.bus = bus
        for (index, disk) in resources.disks.enumerated() {
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
            try add(device, r, vm: vm, kind: VMM_THREAD_VIRTIO_BLK, name: "--disk path=\(disk.config.path)")
            let engine = vmm_virtio_blk_is_async(device) ? "io_uring" : "synchronous I/O (io_uring unavailable)"
            logger.info("\(name): \(disk.config.path), \(ByteSize.describe(disk.sizeBytes)), \(disk.config.numQueues) queue(s), \(engine)")
        }
        for (index, tap) in resources.taps.enumerated() {
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
            try add(device, r, vm: vm, kind: VMM_THREAD_VIRTIO_NET, name: "--net tap=\(tap.name)")
            logger.info("\(name): tap \(tap.name), MAC \(tap.guestMAC), MTU \(tap.mtu), \(net.queuePairs) queue pair(s)")
        }
        if let console = resources.consoleOutput {
            var device: OpaquePointer?
            let r = vmm_virtio_console_create(vm.handle, resources.consoleReadsInput ? STDIN_FILENO : -1, console.fd, &device)
            try add(device, r, vm: vm, kind: VMM_THREAD_VIRTIO_CONSOLE, name: "--console")
        }
        var rng: OpaquePointer?
        let r = vmm_virtio_rng_create(vm.handle, resources.rngSource, &rng)
        try add(rng, r, vm: vm, kind: VMM_THREAD_VIRTIO_RNG, name: "--rng")
    }

    private func add(_ device: OpaquePointer?, _ created: Int32, vm: VirtualMachine, kind: vmm_thread_kind,
                     name: String) throws(VMMError) {
        guard created == 0, let device else { throw .system(SystemError("\(name): create the device", returned: created)) }
        var transport: OpaquePointer?
        let r = vmm_virtio_pci_create(vm.handle, device, &transport)
        guard r == 0, let transport else { throw .system(SystemError("\(name): create its PCI function", returned: r)) }
        devices.append((transport, kind))
        try bus.add(vmm_virtio_pci_function(transport), name: name)
    }

    /// Starts every device thread; each installs its kind's seccomp filter
    /// (from `filters`, when seccomp is on) before it reads a queue.
    func start(filters: [vmm_thread_kind: SeccompFilter]) throws(VMMError) {
        running = true
        for device in devices {
            let filter = filters[device.kind]
            let r = vmm_virtio_pci_start(device.transport, filter == nil ? nil : vmm_seccomp_vcpu_init, filter?.opaque)
            guard r == 0 else {
                throw .system(SystemError("start the \(String(cString: vmm_thread_kind_name(device.kind))) thread", returned: r))
            }
        }
    }

    /// Joins the device threads; call once the vCPUs are joined.
    func stop() {
        for device in devices { vmm_virtio_pci_stop(device.transport) }
        running = false
    }

    deinit {
        for device in devices { vmm_virtio_pci_destroy(device.transport) }
    }
}
