import CVMMCore
@testable import Hypervisor
import Testing

/// Guest RAM starts at 2 MiB boundaries of the host's address space, so
/// transparent huge pages can back it and KVM map it 2 MiB at a time
/// (only where host and guest addresses agree modulo 2 MiB).
@Suite("guest RAM placement", .enabled(if: Host.hasKVM, Host.kvmSkipReason))
struct RAMPlacementTests {
    func offsets(_ vm: VirtualMachine) -> [UInt64] {
        (0..<vmm_memory_region_count(vm.handle)).map { index in
            var region = vmm_mem_region()
            _ = vmm_memory_region(vm.handle, index, &region)
            return UInt64(UInt(bitPattern: region.hva)) % VMM_RAM_ALIGN
        }
    }

    // Not a multiple of 2 MiB: newer kernels align only those by themselves.
    @Test("private RAM of any size, and RAM added later, starts at a 2 MiB boundary")
    func privateRAM() throws {
        let vm = try VirtualMachine(kvm: try KVMDevice(), memory: MemoryConfig(sizeBytes: (16 << 20) + 4096, hotplugBytes: 128 << 20))
        _ = try vm.addRAM(at: GuestLayout.hotplugRAM(memoryBytes: vm.memoryBytes, hotplugBytes: vm.hotplugBytes).start,
                          size: 128 << 20)
        #expect(offsets(vm) == [0, 0])
    }

    @Test("shared RAM's arena starts at a 2 MiB boundary, and so does its RAM")
    func sharedRAM() throws {
        let memory = MemoryConfig(sizeBytes: 64 << 20, shared: true)
        let arena = try RAMArena(for: memory)
        #expect(UInt64(UInt(bitPattern: arena.base)) % VMM_RAM_ALIGN == 0)
        let vm = try VirtualMachine(kvm: try KVMDevice(), memory: memory, arena: arena)
        #expect(offsets(vm) == [0])
    }
}
