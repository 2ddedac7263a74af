import CVMMCore

#if canImport(Glibc)
import Glibc
#endif

/// Bus 0 of one PCI segment for one boot: the C bus (host bridge, ECAM,
/// and for segment 0 conf1), which function sits in which slot, and where
/// each BAR goes in the segment's windows — what firmware would have done
/// before the kernel starts. Segment 0 alone has conf1 and the I/O window;
/// each segment has its share of the 32-bit and 64-bit windows.
final class PCIBus {
    let handle: OpaquePointer
    let segment: Int
    /// The bus's ranges live on this VM's buses: it outlives the bus.
    private let vm: VirtualMachine
    /// Slots with a function; 0 is the host bridge's.
    private var used: Set<Int> = [0]
    private var allocators: [vmm_pci_bar_kind: WindowAllocator]
    /// Where each slot's BARs were placed, given back when the slot empties.
    private var placed: [Int: [(kind: vmm_pci_bar_kind, address: UInt64)]] = [:]
    /// Each slot's function, while it is on the bus.
    private var functions: [Int: OpaquePointer] = [:]

    init(vm: VirtualMachine, segment: Int = 0, of segments: Int = 1) throws(VMMError) {
        var bus: OpaquePointer?
        var space = vmm_pci_space(pio: vm.pioBus, mmio: vm.mmioBus)
        let r = vmm_pci_bus_create(&space, GuestLayout.pciECAM(segment: segment).start, segment == 0, &bus)
        guard r == 0, let bus else { throw .system(SystemError("create PCI segment \(segment)'s bus", returned: r)) }
        handle = bus
        self.vm = vm
        self.segment = segment
        allocators = [
            VMM_PCI_BAR_MEM32: WindowAllocator(GuestLayout.pciMMIO32(segment: segment, of: segments)),
            VMM_PCI_BAR_MEM64: WindowAllocator(GuestLayout.pciMMIO64(memoryBytes: vm.memoryBytes, hotplugBytes: vm.hotplugBytes,
                                                                     segment: segment, of: segments)),
        ]
        if segment == 0 { allocators[VMM_PCI_BAR_IO] = WindowAllocator(GuestLayout.pciIO, reserved: GuestLayout.fixedPortsInPCIIO) }
    }

    /// Runs once every function on it is gone (they unregister their BARs).
    deinit { vmm_pci_bus_destroy(handle) }

    /// The slot the next `add` takes: the lowest free one.
    var nextFreeSlot: Int { (1...).first { !used.contains($0) }! }

    /// Places `function` in the next free slot with its BARs assigned;
    /// returns its address.
    @discardableResult
    func add(_ function: OpaquePointer, name: String) throws(VMMError) -> PCIAddress {
        let slot = nextFreeSlot
        guard slot < Int(VMM_PCI_SLOTS) else {
            throw .system(SystemError("\(name): no free slot on PCI segment \(segment) (31 devices at most)", errno: ENOSPC))
        }
        var bars: [(kind: vmm_pci_bar_kind, address: UInt64)] = []
        // A failure gives back what this add placed: the window is as before.
        func undo() { for bar in bars { allocators[bar.kind]?.release(bar.address) } }
        for bar in 0..<UInt32(VMM_PCI_BARS) {
            var info = vmm_pci_bar_info()
            vmm_pci_dev_bar(function, bar, &info)
            guard info.size > 0, let window = allocators[info.kind] else { continue }
            guard let address = window.allocate(size: info.size) else {
                undo()
                throw .system(SystemError("\(name): no room for its \(ByteSize.describe(info.size)) BAR\(bar) in PCI segment \(segment)'s window",
                                          errno: ENOSPC))
            }
            bars.append((info.kind, address))
            let r = vmm_pci_dev_set_bar_address(function, bar, address)
            guard r == 0 else {
                undo()
                throw .system(SystemError("\(name): place BAR\(bar)", returned: r))
            }
        }
        let r = vmm_pci_bus_add(handle, UInt32(slot), function)
        guard r == 0 else {
            undo()
            throw .system(SystemError("\(name): put it in PCI slot \(slot)", returned: r))
        }
        used.insert(slot)
        placed[slot] = bars
        functions[slot] = function
        return PCIAddress(segment: segment, slot: slot)
    }

    /// The BARs of the function in `slot`, where its registers say they
    /// are now (vm.info's device tree).
    func bars(slot: Int) -> [PCIBar] {
        guard let function = functions[slot] else { return [] }
        return (0..<UInt32(VMM_PCI_BARS)).compactMap { (bar) -> PCIBar? in
            var info = vmm_pci_bar_info()
            vmm_pci_dev_bar(function, bar, &info)
            return info.size > 0 ? PCIBar(index: Int(bar), info) : nil
        }
    }

    /// Empties `slot` (hot-unplug): call with the vCPUs paused, then
    /// destroy the function. Its BAR space goes back to the windows.
    func remove(slot: Int) {
        _ = vmm_pci_bus_remove(handle, UInt32(slot))
        used.remove(slot)
        functions.removeValue(forKey: slot)
        for bar in placed.removeValue(forKey: slot) ?? [] { allocators[bar.kind]?.release(bar.address) }
    }
}

extension Array where Element == PCIBus {
    /// Bus 0 of `segment`, for `name`'s device. `VMConfig.validate` refuses a
    /// segment the VM lacks first; this keeps an index from trapping should
    /// a configuration reach here unvalidated.
    func bus(segment: Int, for name: String) throws(VMMError) -> PCIBus {
        guard indices.contains(segment) else {
            throw .config(.invalidValue(option: name, key: "pci_segment", value: String(segment),
                                        reason: "no such PCI segment: the VM has \(count)"))
        }
        return self[segment]
    }
}

/// Hands out naturally aligned ranges of one window, lowest first, and
/// takes them back: a device removed leaves its BARs' space to the next,
/// so a thousand add/remove cycles fit where one does.
final class WindowAllocator {
    private let window: GuestLayout.Range
    /// Taken ranges by start, [start, end): handed out, or reserved.
    private var taken: [(start: UInt64, end: UInt64, reserved: Bool)] = []

    /// `reserved`: parts of the window that are someone else's (fixed ports).
    init(_ window: GuestLayout.Range, reserved: [GuestLayout.Range] = []) {
        self.window = window
        taken = reserved.map { ($0.start, $0.end, true) }.sorted { $0.start < $1.start }
    }

    /// `size` is a power of two; nil when no gap in the window holds it.
    func allocate(size: UInt64) -> UInt64? {
        func aligned(_ address: UInt64) -> UInt64? {
            let (sum, overflow) = address.addingReportingOverflow(size - 1)
            return overflow ? nil : sum & ~(size - 1)
        }
        guard size > 0, size & (size - 1) == 0, var start = aligned(window.start) else { return nil }
        var index = 0
        while true {
            let (end, overflow) = start.addingReportingOverflow(size)
            guard !overflow, end <= window.end else { return nil }
            // The first range not wholly below the candidate: it fits before it, or the candidate moves past it.
            while index < taken.count && taken[index].end <= start { index += 1 }
            if index == taken.count || end <= taken[index].start {
                taken.insert((start, end, false), at: index)
                return start
            }
            guard let next = aligned(taken[index].end) else { return nil }
            start = next
        }
    }

    /// Gives back what `allocate` handed out at `address`.
    func release(_ address: UInt64) {
        taken.removeAll { $0.start == address && !$0.reserved }
    }
}
