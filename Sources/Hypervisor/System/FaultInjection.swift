#if DEBUG
import Synchronization

#if canImport(Glibc)
import Glibc
#endif
#endif

/// Named steps of the VM's multi-step operations (hotplug, resize) that a
/// test can make fail, to show each failure undone: the VM as it was, the
/// next attempt fine. Only debug builds (what `swift test` runs) read
/// `CLOUD_HYPERVISOR_TEST_FAULTS` (a comma-separated list of points, each
/// failing the first time it is reached); a release build never fails here.
enum FaultInjection {
    enum Point: String, CaseIterable, Sendable {
        /// A hot-added virtio device's thread does not start.
        case deviceThread = "device-thread"
        /// Telling the guest that a PCI slot is filled fails.
        case pciAnnounce = "pci-announce"
        /// Telling the guest that vCPUs arrived fails.
        case vcpuAnnounce = "vcpu-announce"
        /// Mapping hot-added RAM for an assigned device's DMA fails.
        case ramDMA = "ram-dma"
        /// Telling the guest that RAM arrived fails.
        case ramAnnounce = "ram-announce"
    }

    #if DEBUG
    private static let pending = Mutex<Set<String>>(
        Set((getenv("CLOUD_HYPERVISOR_TEST_FAULTS").map { String(cString: $0) } ?? "").split(separator: ",").map(String.init)))
    #endif

    /// Throws, once, if the test asked for `point` to fail.
    static func check(_ point: Point) throws(VMMError) {
        #if DEBUG
        guard pending.withLock({ $0.remove(point.rawValue) }) != nil else { return }
        throw .system(SystemError("\(point.rawValue) (failure injected by the test)", errno: EIO))
        #endif
    }
}
