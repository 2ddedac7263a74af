import CVMMCore

#if canImport(Glibc)
import Glibc
#endif

/// Owns one C-core VM (`struct vmm_vm`): its fds, RAM, vCPUs and buses.
/// Used from the VMM thread only; vCPU threads live in the C core.
final class VirtualMachine {
    let handle: OpaquePointer
    let memoryBytes: UInt64
    /// Room for memory hotplug above RAM (`hotplug_size`).
    let hotplugBytes: UInt64
    /// How RAM is mapped: hot-added RAM is mapped the same way.
    let memoryFlags: UInt32
    /// The VM borrows the fd; this keeps it open as long as the VM lives.
    private let kvm: KVMDevice
    /// Its RAM lies in it: kept until the VM is gone.
    private let arena: RAMArena?

    /// `arena`: where RAM goes (shared RAM, for vhost-user backends).
    /// `ramFiles`: one memfd per RAM range to map instead of new RAM (a
    /// local migration's); each becomes the VM's, or is closed here.
    init(kvm: KVMDevice, memory: MemoryConfig, arena: RAMArena? = nil, ramFiles: [Int32] = []) throws(VMMError) {
        var error = vmm_error()
        var vm: OpaquePointer?
        let result = vmm_vm_create(kvm.fd, &vm, &error)
        guard result == 0, let vm else {
            let what = error.what.map { String(cString: $0) } ?? "create the VM"
            throw .system(SystemError(what, returned: result))
        }
        handle = vm
        self.kvm = kvm
        self.arena = arena
        memoryBytes = memory.sizeBytes
        hotplugBytes = memory.hotplugBytes
        var flags: UInt32 = 0
        if memory.shared { flags |= UInt32(VMM_MEM_SHARED) }
        if memory.prefault { flags |= UInt32(VMM_MEM_PREFAULT) }
        if memory.mergeable { flags |= UInt32(VMM_MEM_MERGEABLE) }
        if memory.thp { flags |= UInt32(VMM_MEM_THP) }
        memoryFlags = flags
        if let arena { vmm_memory_set_arena(vm, arena.base, arena.size) }
        let ranges = GuestLayout.ramRanges(memoryBytes: memory.sizeBytes)
        var files = ramFiles[...]
        defer { files.forEach { close($0) } }
        guard files.isEmpty || files.count == ranges.count else {
            throw .system(SystemError("map the RAM handed over: \(files.count) files for \(ranges.count) ranges", errno: EINVAL))
        }
        for range in ranges {
            let file = files.first
            let r = file.map { vmm_memory_add_ram_file(vm, range.start, range.size, flags, $0) } ?? vmm_memory_add_ram(vm, range.start, range.size, flags)
            if r == 0, file != nil { files.removeFirst() }
            // Every stored property is set by now, so a throw runs deinit,
            // which destroys the VM: destroying it here too freed it twice.
            guard r == 0 else {
                throw .system(SystemError("--memory size=\(ByteSize.describe(memory.sizeBytes)): map \(ByteSize.describe(range.size)) of guest RAM at 0x\(String(range.start, radix: 16))", returned: r))
            }
        }
    }

    deinit { vmm_vm_destroy(handle) }

    /// Guest RAM's regions, in order.
    var regions: [vmm_mem_region] {
        (0..<vmm_memory_region_count(handle)).map { index in
            var region = vmm_mem_region()
            _ = vmm_memory_region(handle, index, &region)
            return region
        }
    }

    var pioBus: OpaquePointer { vmm_vm_pio_bus(handle) }
    var mmioBus: OpaquePointer { vmm_vm_mmio_bus(handle) }

    /// Host view of guest RAM [gpa, gpa+count), or nil if no one region holds it.
    func memory(at gpa: UInt64, count: UInt64) -> UnsafeMutableRawBufferPointer? {
        guard let base = vmm_memory_hva(handle, gpa, count) else { return nil }
        return UnsafeMutableRawBufferPointer(start: base, count: Int(count))
    }

    /// `cpus.boot` vCPUs now, room for `cpus.max` (`plugVCPU`).
    /// Memory hotplug: `size` bytes of new RAM at `gpa`; returns its region's index.
    func addRAM(at gpa: UInt64, size: UInt64) throws(VMMError) -> UInt32 {
        let index = vmm_memory_region_count(handle)
        try check(vmm_memory_add_ram(handle, gpa, size, memoryFlags),
                  "map \(ByteSize.describe(size)) of hot-added RAM at 0x\(String(gpa, radix: 16))")
        return index
    }

    /// Undoes the last `addRAM`, which the guest was never told of; every
    /// vCPU and device thread must be parked.
    func removeLastRAM() { vmm_memory_remove_last(handle) }

    func createVCPUs(_ cpus: CPUsConfig) throws(VMMError) {
        try check(vmm_vcpus_create(handle, UInt32(cpus.boot), UInt32(cpus.max)),
                  "create \(cpus.boot) vCPUs (of at most \(cpus.max))")
    }

    /// Hotplug: vCPU `index` created if it never was, and its thread started.
    func plugVCPU(_ index: Int) throws(VMMError) {
        try check(vmm_vcpu_plug(handle, UInt32(index)), "start vCPU \(index)")
    }

    /// Hotplug: vCPU `index`'s thread stopped and joined; KVM keeps the vCPU.
    func unplugVCPU(_ index: Int) { vmm_vcpu_unplug(handle, UInt32(index)) }

    func registerPIO(base: UInt64, length: UInt64, handler: vmm_io_fn, opaque: UnsafeMutableRawPointer?) throws(VMMError) {
        try check(vmm_bus_register(pioBus, base, length, handler, opaque),
                  "claim I/O ports 0x\(String(base, radix: 16))+\(length)")
    }

    func registerMMIO(base: UInt64, length: UInt64, handler: vmm_io_fn, opaque: UnsafeMutableRawPointer?) throws(VMMError) {
        try check(vmm_bus_register(mmioBus, base, length, handler, opaque),
                  "claim MMIO 0x\(String(base, radix: 16))+\(length)")
    }

    /// Starts every vCPU thread; each runs `init` (if any) before guest code.
    func start(threadInit: vmm_vcpu_thread_init_fn? = nil, opaque: UnsafeMutableRawPointer? = nil) throws(VMMError) {
        try check(vmm_vcpus_start(handle, threadInit, opaque), "start the vCPU threads")
    }

    func requestStop() { vmm_vm_request_stop(handle, VMM_STOP_REQUESTED, -1, 0) }
    var stopEventFD: Int32 { vmm_vm_stop_eventfd(handle) }
    var stopInfo: vmm_stop_info { vmm_vm_stop_info(handle) }
    func joinVCPUs() { vmm_vcpus_join(handle) }

    private func check(_ result: Int32, _ what: @autoclosure () -> String) throws(VMMError) {
        guard result == 0 else { throw .system(SystemError(what(), returned: result)) }
    }
}
