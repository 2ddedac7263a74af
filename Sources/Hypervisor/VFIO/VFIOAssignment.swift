import CVMMCore

#if canImport(Glibc)
import Glibc
#endif

/// The launch's VFIO descriptors, opened while the VMM may still be
/// privileged and kept for every boot: the container, each IOMMU group
/// once, each assigned device.
final class VFIOAssignment {
    struct Assigned {
        let config: DeviceConfig
        let found: DeviceDiscovery.Device
        let fd: Int32
    }

    let container: Int32
    /// Group number → its fd.
    let groups: [Int: Int32]
    let devices: [Assigned]
    /// `bind=auto` devices, given back to their drivers once the fds above are closed.
    private let bindings: [ManagedBinding]

    init(_ configs: [DeviceConfig], discovery: DeviceDiscovery = DeviceDiscovery()) throws(VMMError) {
        let found: [DeviceDiscovery.Device]
        var bindings: [ManagedBinding] = []
        do {
            for config in configs where config.managedBinding {
                if let binding = try ManagedBinding(bdf: config.bdf, sysfs: discovery.sysfs) { bindings.append(binding) }
            }
            found = try discovery.check(configs)
        } catch {
            bindings.forEach { $0.restore() }
            throw .config(error)
        }
        let container = open("/dev/vfio/vfio", O_RDWR | O_CLOEXEC)
        guard container >= 0 else {
            let error = errno
            bindings.forEach { $0.restore() }
            throw .system(SystemError(error == ENOENT ? "open /dev/vfio/vfio (load the vfio-pci module: modprobe vfio-pci)"
                                                      : "open /dev/vfio/vfio", errno: error))
        }
        var groups: [Int: Int32] = [:]
        var devices: [Assigned] = []
        do throws(VMMError) {
            for device in found where groups[device.group] == nil {
                let path = "/dev/vfio/\(device.group)"
                let fd = open(path, O_RDWR | O_CLOEXEC)
                guard fd >= 0 else {
                    let error = errno
                    throw .system(SystemError(error == EBUSY ? "open \(path) (the group is in use: another VMM has a device of it)"
                                                             : "open \(path)", errno: error))
                }
                groups[device.group] = fd
            }
            var error = vmm_vfio_error()
            let fds = found.map { groups[$0.group]! }
            var r = fds.withUnsafeBufferPointer { vmm_vfio_container_setup(container, $0.baseAddress, UInt32($0.count), &error) }
            guard r == 0 else { throw .system(SystemError("VFIO: \(String(cString: error.what))", returned: r)) }
            for (config, device) in zip(configs, found) {
                var fd: Int32 = -1
                r = vmm_vfio_device_open(groups[device.group]!, device.bdf, &fd, &error)
                guard r == 0 else { throw .system(SystemError("--device \(device.bdf): open it through VFIO", returned: r)) }
                devices.append(Assigned(config: config, found: device, fd: fd))
            }
        } catch {
            for device in devices { close(device.fd) }
            for fd in groups.values { close(fd) }
            close(container)
            bindings.forEach { $0.restore() }
            throw error
        }
        self.bindings = bindings
        self.container = container
        self.groups = groups
        self.devices = devices
    }

    deinit {
        for device in devices { close(device.fd) }
        for fd in groups.values { close(fd) }
        close(container)
        // vfio-pci lets go of a device only once nothing holds it open.
        bindings.forEach { $0.restore() }
    }
}

/// One boot's assigned devices: KVM told about the groups, guest RAM
/// mapped for DMA (IOVA = guest physical address), each device a function
/// on bus 0 after the virtio ones. Unmapped and released when the boot ends.
final class AssignedDevices {
    private let bus: PCIBus
    private let vm: VirtualMachine
    let assignment: VFIOAssignment
    private var functions: [OpaquePointer] = []
    /// The slot each function took, in `assignment.devices`' order.
    private(set) var slots: [Int] = []
    private var mapped = false
    private var groupsAdded = false

    init(vm: VirtualMachine, bus: PCIBus, assignment: VFIOAssignment) throws(VMMError) {
        self.vm = vm
        self.bus = bus
        self.assignment = assignment
        let groups = Array(assignment.groups.values)
        var r = groups.withUnsafeBufferPointer { vmm_vfio_kvm_groups(vm.handle, $0.baseAddress, UInt32($0.count)) }
        guard r == 0 else { throw .system(SystemError("VFIO: tell KVM about the IOMMU groups (KVM_DEV_TYPE_VFIO)", returned: r)) }
        groupsAdded = true
        r = vmm_vfio_dma_map(assignment.container, vm.handle, 0)
        guard r == 0 else {
            throw .system(SystemError("VFIO: map guest RAM for the device's DMA"
                + (r == -ENOMEM ? " (the locked-memory limit is too low: run as root, or raise ulimit -l)" : ""), returned: r))
        }
        mapped = true
        for device in assignment.devices {
            // INTx: the _PRT line of the slot it is about to take.
            let pin = max(Int(device.found.interruptPin), 1) - 1
            let gsi = PCIDescription.intxGSI(slot: bus.nextFreeSlot, pin: pin)
            var function: OpaquePointer?
            var error = vmm_vfio_error()
            r = vmm_vfio_pci_create(vm.handle, device.fd, gsi, &function, &error)
            guard r == 0, let function else {
                throw .system(SystemError("--device \(device.found.bdf): \(error.what.map { String(cString: $0) } ?? "set it up")", returned: r))
            }
            functions.append(function)
            slots.append(try bus.add(vmm_vfio_pci_function(function), name: "--device \(device.found.bdf)"))
        }
    }

    /// Memory hotplug: the VM's RAM regions from `region` on mapped for the
    /// devices' DMA, as the rest was when they joined.
    func mapDMA(from region: UInt32) throws(VMMError) {
        let r = vmm_vfio_dma_map(assignment.container, vm.handle, region)
        guard r == 0 else { throw .system(SystemError("VFIO: map hot-added RAM for the device's DMA", returned: r)) }
    }

    /// A failed memory hotplug: the regions from `region` on unmapped again.
    func unmapDMA(from region: UInt32) { vmm_vfio_dma_unmap(assignment.container, vm.handle, region) }

    /// Runs once the vCPUs are joined, or parked for a hot-unplug: out of
    /// their slots, unmapped, and the groups out of KVM's hands.
    deinit {
        for slot in slots { bus.remove(slot: slot) }
        for function in functions { vmm_vfio_pci_destroy(function) }
        if mapped { vmm_vfio_dma_unmap(assignment.container, vm.handle, 0) }
        if groupsAdded {
            let groups = Array(assignment.groups.values)
            groups.withUnsafeBufferPointer { vmm_vfio_kvm_groups_remove(vm.handle, $0.baseAddress, UInt32($0.count)) }
        }
    }
}
