import CVMMCore

#if canImport(Glibc)
import Glibc
#endif

/// Bus 0 of one PCI segment for one boot: the C bus (host bridge, ECAM,
/// and for segment 0 conf1), which function sits in which slot, and where
/// each BAR goes in the segment's windows — what firmware would have done
/// before the kernel starts. Devices go on segment 0; the other segments
/// are host bridges alone for now.
final class PCIBus {
    let handle: OpaquePointer
    /// The bus's ranges live on this VM's buses: it outlives the bus.
    private let vm: VirtualMachine
    /// Slots with a function; 0 is the host bridge's.
    private var used: Set<Int> = [0]
    private var allocators: [vmm_pci_bar_kind: WindowAllocator]

    init(vm: VirtualMachine, segment: Int = 0, of segments: Int = 1) throws(VMMError) {
        var bus: OpaquePointer?
        let r = vmm_pci_bus_create(vm.handle, GuestLayout.pciECAM(segment: segment).start, segment == 0, &bus)
        guard r == 0, let bus else { throw .system(SystemError("create PCI segment \(segment)'s bus", returned: r)) }
        handle = bus
        self.vm = vm
        let mmio64 = WindowAllocator(GuestLayout.pciMMIO64(memoryBytes: vm.memoryBytes, hotplugBytes: vm.hotplugBytes,
                                                                 segment: segment, of: segments))
        allocators = segment == 0
            ? [VMM_PCI_BAR_IO: WindowAllocator(GuestLayout.pciIO), VMM_PCI_BAR_MEM32: WindowAllocator(GuestLayout.pciMMIO32),
               VMM_PCI_BAR_MEM64: mmio64]
            : [VMM_PCI_BAR_MEM64: mmio64]
    }

    /// Runs once every function on it is gone (they unregister their BARs).
    deinit { vmm_pci_bus_destroy(handle) }

    /// The slot the next `add` takes: the lowest free one.
    var nextFreeSlot: Int { (1...).first { !used.contains($0) }! }

    /// Places `function` in the next free slot with its BARs assigned;
    /// returns the slot.
    @discardableResult
    func add(_ function: OpaquePointer, name: String) throws(VMMError) -> Int {
        let slot = nextFreeSlot
        guard slot < Int(VMM_PCI_SLOTS) else {
            throw .system(SystemError("\(name): no free PCI slot (31 devices at most)", errno: ENOSPC))
        }
        for bar in 0..<UInt32(VMM_PCI_BARS) {
            var kind = VMM_PCI_BAR_NONE
            var size: UInt64 = 0
            vmm_pci_dev_bar(function, bar, &kind, &size)
            guard size > 0, let window = allocators[kind] else { continue }
            guard let address = window.allocate(size: size) else {
                throw .system(SystemError("\(name): no room for its \(ByteSize.describe(size)) BAR\(bar) in the PCI window",
                                          errno: ENOSPC))
            }
            let r = vmm_pci_dev_set_bar_address(function, bar, address)
            guard r == 0 else { throw .system(SystemError("\(name): place BAR\(bar)", returned: r)) }
        }
        let r = vmm_pci_bus_add(handle, UInt32(slot), function)
        guard r == 0 else { throw .system(SystemError("\(name): put it in PCI slot \(slot)", returned: r)) }
        used.insert(slot)
        return slot
    }

    /// Empties `slot` (hot-unplug): call with the vCPUs paused, then
    /// destroy the function. Its BAR space is not handed out again.
    func remove(slot: Int) {
        _ = vmm_pci_bus_remove(handle, UInt32(slot))
        used.remove(slot)
    }
}

/// Hands out naturally aligned ranges of one window, lowest first.
final class WindowAllocator {
    private let window: GuestLayout.Range
    private var next: UInt64

    init(_ window: GuestLayout.Range) {
        self.window = window
        next = window.start
    }

    /// `size` is a power of two; nil when the window is full.
    func allocate(size: UInt64) -> UInt64? {
        let start = (next + size - 1) & ~(size - 1)
        guard start >= next, start + size > start, start + size <= window.end else { return nil }
        next = start + size
        return start
    }
}
