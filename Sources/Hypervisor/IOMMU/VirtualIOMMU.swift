import CVMMCore

#if canImport(Glibc)
import Glibc
#endif

/// One boot's virtio-iommu, as Cloud Hypervisor offers it: a virtio device
/// on segment 0 whose endpoints are the functions put behind it with
/// `iommu=on` (virtio devices translate through it; an assigned device's
/// own VFIO container holds the guest's mappings) and every function of the
/// `iommu_segments`. The device itself is its PCI transport's, which
/// `VirtioDevices` owns; endpoints leave before it does.
final class VirtualIOMMU {
    /// The virtio device (vmm_virtio).
    let device: OpaquePointer
    /// Where it sits, once placed.
    var address: PCIAddress?
    /// Segments behind it whole.
    let segments: [Int]
    /// Endpoint of each function behind it.
    private var endpoints: [PCIAddress: OpaquePointer] = [:]
    /// Whether the guest was told of it (its VIOT): later functions are hot-added.
    private var booted = false

    init(vm: VirtualMachine, platform: PlatformConfig) throws(VMMError) {
        var device: OpaquePointer?
        let r = vmm_virtio_iommu_create(vm.handle, UInt32(platform.iommuAddressWidth), &device)
        guard r == 0, let device else { throw .system(SystemError("--platform: create the virtio-iommu", returned: r)) }
        self.device = device
        segments = platform.iommuSegments
    }

    /// The function at `address` behind the IOMMU (`check`ed first);
    /// `container` is an assigned device's own VFIO container, -1 for a
    /// virtio device. Returns its endpoint (vmm_iommu_endpoint).
    func attach(_ address: PCIAddress, container: Int32, name: String) throws(VMMError) -> OpaquePointer {
        let id = vmm_iommu_endpoint_id(UInt16(address.segment), 0, UInt8(address.slot), 0)
        var endpoint: OpaquePointer?
        let r = vmm_iommu_endpoint_add(device, id, container, &endpoint)
        guard r == 0, let endpoint else { throw .system(SystemError("\(name): put it behind the IOMMU", returned: r)) }
        endpoints[address] = endpoint
        return endpoint
    }

    /// Whether a device named `name` may go on `segment`, behind the
    /// IOMMU or not, in a VM that has `iommu` (the command line's devices
    /// were checked with their configuration; hot-added ones come here).
    /// One hot-added behind it must go on a segment behind it whole: the
    /// guest learnt of the rest from the VIOT at boot.
    static func check(_ iommu: VirtualIOMMU?, behind: Bool, segment: Int, name: String) throws(VMMError) {
        if behind && iommu == nil {
            throw .config(.conflict("\(name): iommu=on, but the VM has no virtual IOMMU: it is made at boot for the devices and segments (--platform iommu_segments) behind it"))
        }
        if behind, let iommu, iommu.booted, !iommu.segments.contains(segment) {
            // Cloud Hypervisor: "Invalid IOMMU hotplug".
            throw .config(.conflict("\(name): a device added to a running VM can be behind the IOMMU only on a segment that is whole (--platform iommu_segments=[\(segment)])"))
        }
        if !behind, let iommu, iommu.segments.contains(segment) {
            throw .config(.conflict("\(name): PCI segment \(segment) is behind the IOMMU (--platform iommu_segments): give the device iommu=on, or put it on another segment"))
        }
    }

    /// The function at `address` left (its device stopped): out of its
    /// domain, its container's mappings dropped. Nothing if it was not behind it.
    func detach(_ address: PCIAddress) {
        guard let endpoint = endpoints.removeValue(forKey: address) else { return }
        vmm_iommu_endpoint_remove(endpoint)
    }

    /// Every endpoint out, before the device goes.
    func detachAll() {
        for address in Array(endpoints.keys) { detach(address) }
    }

    /// What the guest is told at boot (its VIOT): from then on, endpoints
    /// are hot-added ones.
    func bootDescription() -> VIOTDescription? {
        booted = true
        let behind = endpoints.keys.sorted { ($0.segment, $0.slot) < ($1.segment, $1.slot) }
        return address.map { VIOTDescription(iommu: $0, endpoints: behind, segments: segments) }
    }
}
