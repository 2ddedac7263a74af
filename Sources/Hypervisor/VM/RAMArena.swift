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
    /// The reservation as mapped: `base` and `size` plus the slack that aligns them.
    private let reservation: (start: UnsafeMutableRawPointer, length: Int)

    /// Room for the RAM and hotplug room `memory` may grow to.
    init(for memory: MemoryConfig) throws(VMMError) {
        let most = memory.sizeBytes + memory.hotplugBytes
        let top = GuestLayout.hotplugRAM(memoryBytes: most, hotplugBytes: memory.hotplugBytes).end
        size = top + (1 << 30)
        let length = Int(size + VMM_RAM_ALIGN)
        let p = mmap(nil, length, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0)
        guard let p, p != MAP_FAILED else {
            throw .system(SystemError("reserve \(ByteSize.describe(size)) of address space for guest RAM", errno: errno))
        }
        reservation = (p, length)
        let align = UInt(VMM_RAM_ALIGN)
        base = p + Int((align - UInt(bitPattern: p) % align) % align)
    }

    deinit { munmap(reservation.start, reservation.length) }
}
