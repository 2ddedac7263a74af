import CVMMCore

#if canImport(Glibc)
import Glibc
#endif

/// Host address space reserved once per launch for guest RAM, which each
/// boot maps at `base + gpa`: shared RAM keeps its host addresses across
/// reboots, as vhost-user backends expect of a frontend (they keep the
/// rings' addresses from one boot to the next; libvhost-user gives up on a
/// table that no longer holds them). Costs address space only.
final class RAMArena {
    /// At a `VMM_RAM_ALIGN` boundary, so guest RAM can be huge pages.
    let base: UnsafeMutableRawPointer
    let size: UInt64

    /// Room for the RAM and hotplug room `memory` may grow to.
    init(for memory: MemoryConfig) throws(VMMError) {
        let most = memory.sizeBytes + memory.hotplugBytes
        let top = GuestLayout.hotplugRAM(memoryBytes: most, hotplugBytes: memory.hotplugBytes).end
        size = top + (1 << 30)
        guard let p = vmm_memory_reserve(size) else {
            throw .system(SystemError("reserve \(ByteSize.describe(size)) of address space for guest RAM", errno: errno))
        }
        base = p
    }

    deinit { munmap(base, Int(size)) }
}
