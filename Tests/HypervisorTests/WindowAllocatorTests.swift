import CVMMCore
@testable import Hypervisor
import Testing

/// BAR placement in a PCI window: naturally aligned, lowest first, fixed
/// ports skipped, and space given back on removal.
@Suite("PCI window allocator")
struct WindowAllocatorTests {
    @Test("aligned, lowest first, around reserved ranges; nil when no gap holds it")
    func placement() {
        let window = WindowAllocator(GuestLayout.Range(start: 0x1000, size: 0xf000),
                                     reserved: [GuestLayout.Range(start: 0x1000, size: 0x10), GuestLayout.Range(start: 0x2100, size: 0x20)])
        #expect(window.allocate(size: 0x100) == 0x1100, "past the reserved head, aligned")
        #expect(window.allocate(size: 0x10) == 0x1010, "the gap before it")
        #expect(window.allocate(size: 0x1000) == 0x3000, "0x2000 would cover the reserved 0x2100")
        #expect(window.allocate(size: 3) == nil, "not a power of two")
        #expect(window.allocate(size: 0x10000) == nil)
    }

    @Test("a thousand add/remove cycles take the same place each time; a removed range is free again, a reserved one never")
    func release() {
        let window = WindowAllocator(GuestLayout.pciIO, reserved: GuestLayout.fixedPortsInPCIIO)
        let first = window.allocate(size: 0x80)
        for _ in 0..<1000 {
            let address = window.allocate(size: 0x4000)
            #expect(address == 0x4000)
            window.release(address ?? 0)
        }
        window.release(UInt64(VMM_PCI_HOTPLUG_PORT))
        // Fill the window with 0x100-byte BARs: none lands on a hotplug controller's ports.
        var placed: [UInt64] = []
        while let address = window.allocate(size: 0x100) { placed.append(address) }
        #expect(first == 0x1000 && !placed.isEmpty)
        for fixed in GuestLayout.fixedPortsInPCIIO {
            #expect(!placed.contains { $0 < fixed.end && fixed.start < $0 + 0x100 }, "a BAR over \(fixed)")
        }
        // 0x1100 on, less the memory (2), PCI (1) and CPU (2) hotplug blocks.
        #expect(placed.count == (0x10000 - 0x1100) / 0x100 - 2 - 1 - 2, "\(placed.count) BARs")
    }
}
