import CVMMCore

#if canImport(Glibc)
import Glibc
#endif

/// One boot's assigned devices, each a PCI function like any other: its
/// group known to KVM's VFIO device, and its slot; its DMA either reaches
/// all of the boot's RAM, mapped in the VMM's shared container (once, with
/// the first such device), or, with `iommu=on`, only what the guest maps
/// through the virtual IOMMU, in the device's own container. Any of them,
/// the command line's or hot-added, can leave again.
final class AssignedDevices {
    private let vm: VirtualMachine
    /// Bus 0 of each PCI segment, by segment.
    private let buses: [PCIBus]
    /// The container of the devices not behind the IOMMU, once one came.
    private var shared: VFIOContainer?
    private let iommu: VirtualIOMMU?
    private struct Function {
        let device: VFIODevice
        let handle: OpaquePointer
        let address: PCIAddress
        /// Its group's fd, held open (`attach`) while KVM may refer to it.
        let groupFD: Int32
    }
    private var functions: [Function] = []
    /// Group number → how many of this boot's functions are of it: KVM
    /// holds each group once.
    private var kvmGroups: [Int: Int] = [:]

    init(vm: VirtualMachine, buses: [PCIBus], iommu: VirtualIOMMU?) {
        self.vm = vm
        self.buses = buses
        self.iommu = iommu
    }

    /// The functions with their addresses, in the order they came.
    var addresses: [(device: VFIODevice, address: PCIAddress)] { functions.map { ($0.device, $0.address) } }

    /// `device` into the next free slot of its segment; returns its address.
    /// A failure at any step undoes the steps before it.
    func add(_ device: VFIODevice) throws(VMMError) -> PCIAddress {
        let bus = try buses.bus(segment: device.config.pciSegment, for: "--device")
        let name = "--device \(device.found.bdf)"
        try VirtualIOMMU.check(iommu, behind: device.config.iommu, segment: device.config.pciSegment, name: name)
        let group = device.found.group
        let container = device.container
        let groupFD = try container.attach(group: group)
        var joinedKVM = false
        var function: OpaquePointer?
        var placed: PCIAddress?
        do throws(VMMError) {
            if kvmGroups[group, default: 0] == 0 {
                let r = vmm_vfio_kvm_group_add(vm.handle, groupFD)
                guard r == 0 else { throw .system(SystemError("VFIO: tell KVM about IOMMU group \(group) (KVM_DEV_TYPE_VFIO)", returned: r)) }
                joinedKVM = true
            }
            if !device.config.iommu { try container.map(vm) }
            // INTx: the _PRT line of the slot it is about to take.
            let pin = max(Int(device.found.interruptPin), 1) - 1
            let gsi = PCIDescription.intxGSI(slot: bus.nextFreeSlot, pin: pin)
            var error = vmm_vfio_error()
            let r = vmm_vfio_pci_create(vm.handle, device.descriptor, gsi, &function, &error)
            guard r == 0, let created = function else {
                function = nil
                throw .system(SystemError("--device \(device.found.bdf): \(error.what.map { String(cString: $0) } ?? "set it up")", returned: r))
            }
            let address = try bus.add(vmm_vfio_pci_function(created), name: name)
            placed = address
            if device.config.iommu, let iommu {
                _ = try iommu.attach(address, container: container.descriptor, name: name)
            } else {
                shared = container
            }
            functions.append(Function(device: device, handle: created, address: address, groupFD: groupFD))
            kvmGroups[group, default: 0] += 1
            return address
        } catch {
            if let placed { bus.remove(slot: placed.slot) }
            if let function { vmm_vfio_pci_destroy(function) }
            if joinedKVM { vmm_vfio_kvm_group_remove(vm.handle, groupFD) }
            container.detach(group: group)
            throw error
        }
    }

    func address(of device: VFIODevice) -> PCIAddress? { functions.first { $0.device === device }?.address }

    /// The device at `address` out (with every vCPU parked): its function
    /// gone, its group out of KVM's hands once no function of it is left.
    /// The device stays open; returns it, or nil if none is there.
    @discardableResult
    func remove(_ address: PCIAddress) -> VFIODevice? {
        guard let index = functions.firstIndex(where: { $0.address == address }) else { return nil }
        let function = functions.remove(at: index)
        buses[address.segment].remove(slot: address.slot)
        iommu?.detach(address)
        vmm_vfio_pci_destroy(function.handle)
        let group = function.device.found.group
        kvmGroups[group, default: 1] -= 1
        if kvmGroups[group] == 0 {
            kvmGroups[group] = nil
            vmm_vfio_kvm_group_remove(vm.handle, function.groupFD)
        }
        function.device.container.detach(group: group)
        return function.device
    }

    /// Memory hotplug: the VM's RAM regions from `region` on mapped for the
    /// DMA of the devices not behind the IOMMU, as the rest was when they
    /// joined (the guest maps what the others reach).
    func mapDMA(from region: UInt32) throws(VMMError) { try shared?.map(vm, from: region) }

    /// A failed memory hotplug: the regions from `region` on unmapped again.
    func unmapDMA(from region: UInt32) { shared?.unmap(vm, from: region) }

    /// Runs once the vCPUs are joined: every function out of its slot, the
    /// groups out of KVM's hands, and the boot's RAM unmapped.
    deinit {
        for function in functions.reversed() { remove(function.address) }
        shared?.release(vm)
    }
}
