import CVMMCore

/// Loads a kernel and its initramfs into guest RAM with the ACPI tables and
/// the reset-vector code, and points vCPU 0 at its entry. Two formats, told apart by their magic:
/// a PVH ELF (Xen's PVH boot ABI, Linux's CONFIG_PVH entry; hvm_start_info
/// carries cmdline, memory map and initramfs) and a bzImage (Linux's 64-bit
/// boot protocol; the zero page carries them).
struct KernelLoader {
    let vm: VirtualMachine

    func load(kernel: FileReader, initramfs: FileReader?, cmdline: String, cpus: CPUsConfig,
              platform: PlatformConfig = PlatformConfig(), viot: VIOTDescription? = nil) throws(VMMError) {
        let tables = ACPITables(cpus: CPUDescription(boot: cpus.boot, max: cpus.max), memoryBytes: vm.memoryBytes,
                                pciSegments: platform.pciSegments, hotplugBytes: vm.hotplugBytes, viot: viot)
        for table in try tables.build() {
            try write(table.bytes, at: table.address)
        }
        try write(ResetVector.code(resetPort: UInt16(ACPITables.sleepControlPort), resetValue: ACPITables.resetValue),
                  at: ResetVector.address)
        let magic: [UInt8]
        do {
            magic = try kernel.bytes(at: 0, count: Int(min(kernel.size, 0x206)))
        } catch {
            throw .boot(error)
        }
        if magic.starts(with: [0x7f, 0x45, 0x4c, 0x46]) {
            try loadPVH(kernel: kernel, initramfs: initramfs, cmdline: cmdline)
        } else if magic.count == 0x206, magic[0x202..<0x206].elementsEqual("HdrS".utf8) {
            try loadBzImage(kernel: kernel, initramfs: initramfs, cmdline: cmdline)
        } else {
            throw .boot(.notAKernel(path: kernel.path))
        }
    }

    private func loadPVH(kernel: FileReader, initramfs: FileReader?, cmdline: String) throws(VMMError) {
        let entry: UInt32
        var modules: [vmm_pvh_modlist_entry] = []
        do {
            let kernelEnd: UInt64
            (entry, kernelEnd) = try loadKernel(kernel)
            if let initramfs {
                let placed = try loadInitramfs(initramfs, above: kernelEnd, below: GuestLayout.lowRAMEnd(memoryBytes: vm.memoryBytes))
                modules.append(vmm_pvh_modlist_entry(paddr: placed, size: initramfs.size, cmdline_paddr: 0, reserved: 0))
            }
        } catch {
            throw .boot(error)
        }
        try writeCmdline(cmdline)
        try writeStartInfo(modules: modules)
        let r = vmm_vcpu_setup_pvh(vm.handle, entry, UInt32(GuestLayout.pvhStartInfoAddress), GuestLayout.gdtAddress)
        guard r == 0 else { throw .system(SystemError("set up vCPU 0 for the PVH entry", returned: r)) }
    }

    private func loadKernel(_ file: FileReader) throws(BootError) -> (entry: UInt32, end: UInt64) {
        let path = file.path
        let image = try ELFImage(reading: file)
        // The whole extent first, so that a refusal names the size that fits.
        var end: UInt64 = 0
        for segment in image.segments {
            guard segment.physicalAddress >= GuestLayout.highRAMStart else {
                throw .belowHighRAM(path: path, address: segment.physicalAddress)
            }
            let (segmentEnd, overflow) = segment.physicalAddress.addingReportingOverflow(segment.memorySize)
            end = max(end, overflow ? .max : segmentEnd)
        }
        for segment in image.segments {
            guard let target = vm.memory(at: segment.physicalAddress, count: segment.memorySize) else {
                throw .doesNotFit(what: "--kernel", path: path, needEnd: end, memoryBytes: vm.memoryBytes)
            }
            // The rest (bss) is already zero: guest RAM is a fresh anonymous mapping.
            try file.read(at: segment.fileOffset,
                          into: UnsafeMutableRawBufferPointer(rebasing: target[..<Int(segment.fileSize)]))
        }
        return (image.pvhEntry, end)
    }

    /// At the top of RAM below `limit`, page-aligned, as Linux boot loaders
    /// place it; returns where.
    func loadInitramfs(_ file: FileReader, above kernelEnd: UInt64, below limit: UInt64) throws(BootError) -> UInt64 {
        let pageMask: UInt64 = 0xfff
        guard file.size <= limit, (limit - file.size) & ~pageMask >= kernelEnd,
              let target = vm.memory(at: (limit - file.size) & ~pageMask, count: file.size) else {
            throw .doesNotFit(what: "--initramfs", path: file.path, needEnd: kernelEnd + file.size,
                              memoryBytes: vm.memoryBytes)
        }
        try file.read(at: 0, into: target)
        return (limit - file.size) & ~pageMask
    }

    func writeCmdline(_ cmdline: String) throws(VMMError) {
        try write(Array(cmdline.utf8) + [0], at: GuestLayout.cmdlineAddress)
    }

    private func writeStartInfo(modules: [vmm_pvh_modlist_entry]) throws(VMMError) {
        let memmap = GuestLayout.memoryMap(memoryBytes: vm.memoryBytes).map {
            vmm_pvh_memmap_entry(addr: $0.range.start, size: $0.range.size, type: $0.type, reserved: 0)
        }
        try write(memmap, at: GuestLayout.pvhMemmapAddress)
        try write(modules, at: GuestLayout.pvhModlistAddress)

        let info = vmm_pvh_start_info(
            magic: VMM_PVH_START_MAGIC, version: 1, flags: 0, nr_modules: UInt32(modules.count),
            modlist_paddr: modules.isEmpty ? 0 : GuestLayout.pvhModlistAddress,
            cmdline_paddr: GuestLayout.cmdlineAddress, rsdp_paddr: ACPITables.rsdpAddress,
            memmap_paddr: GuestLayout.pvhMemmapAddress, memmap_entries: UInt32(memmap.count), reserved: 0)
        try write([info], at: GuestLayout.pvhStartInfoAddress)
    }

    func write<T>(_ values: [T], at gpa: UInt64) throws(VMMError) {
        let bytes = UInt64(MemoryLayout<T>.stride * values.count)
        guard bytes > 0 else { return }
        guard let target = vm.memory(at: gpa, count: bytes) else {
            throw .boot(.doesNotFit(what: "boot data", path: "", needEnd: gpa + bytes, memoryBytes: vm.memoryBytes))
        }
        values.withUnsafeBytes { target.copyMemory(from: $0) }
    }
}
