import CVMMCore

/// Loads a PVH ELF kernel and its initramfs into guest RAM, writes the
/// hvm_start_info, command line and memory map, and points vCPU 0 at the
/// entry (Xen's PVH boot ABI, which Linux implements with CONFIG_PVH).
struct PVHLoader {
    let vm: VirtualMachine

    func load(kernel: FileReader, initramfs: FileReader?, cmdline: String, vcpuCount: Int) throws(VMMError) {
        let entry: UInt32
        let kernelEnd: UInt64
        do {
            (entry, kernelEnd) = try loadKernel(kernel)
        } catch {
            throw .boot(error)
        }
        var modules: [vmm_pvh_modlist_entry] = []
        if let initramfs {
            do {
                modules.append(try loadInitramfs(initramfs, above: kernelEnd))
            } catch {
                throw .boot(error)
            }
        }
        for table in ACPITables(vcpuCount: vcpuCount).build() {
            try write(table.bytes, at: table.address)
        }
        try writeStartInfo(cmdline: cmdline, modules: modules)
        let r = vmm_vcpu_setup_pvh(vm.handle, entry, UInt32(GuestLayout.pvhStartInfoAddress), GuestLayout.gdtAddress)
        guard r == 0 else { throw .system(SystemError("set up vCPU 0 for the PVH entry", returned: r)) }
    }

    private func loadKernel(_ file: FileReader) throws(BootError) -> (entry: UInt32, end: UInt64) {
        let path = file.path
        let image = try ELFImage(reading: file)
        var end: UInt64 = 0
        for segment in image.segments {
            guard segment.physicalAddress >= GuestLayout.highRAMStart else {
                throw .belowHighRAM(path: path, address: segment.physicalAddress)
            }
            let (segmentEnd, overflow) = segment.physicalAddress.addingReportingOverflow(segment.memorySize)
            guard !overflow, let target = vm.memory(at: segment.physicalAddress, count: segment.memorySize) else {
                throw .doesNotFit(what: "--kernel", path: path, needEnd: overflow ? .max : segmentEnd,
                                  memoryBytes: vm.memoryBytes)
            }
            // The rest (bss) is already zero: guest RAM is a fresh anonymous mapping.
            try file.read(at: segment.fileOffset,
                          into: UnsafeMutableRawBufferPointer(rebasing: target[..<Int(segment.fileSize)]))
            end = max(end, segmentEnd)
        }
        return (image.pvhEntry, end)
    }

    /// At the top of RAM below the 32-bit hole, page-aligned, as Linux
    /// boot loaders place it.
    private func loadInitramfs(_ file: FileReader, above kernelEnd: UInt64) throws(BootError) -> vmm_pvh_modlist_entry {
        let path = file.path
        let lowEnd = GuestLayout.lowRAMEnd(memoryBytes: vm.memoryBytes)
        let pageMask: UInt64 = 0xfff
        guard file.size <= lowEnd, (lowEnd - file.size) & ~pageMask >= kernelEnd,
              let target = vm.memory(at: (lowEnd - file.size) & ~pageMask, count: file.size) else {
            throw .doesNotFit(what: "--initramfs", path: path, needEnd: kernelEnd + file.size,
                              memoryBytes: vm.memoryBytes)
        }
        let address = (lowEnd - file.size) & ~pageMask
        try file.read(at: 0, into: target)
        return vmm_pvh_modlist_entry(paddr: address, size: file.size, cmdline_paddr: 0, reserved: 0)
    }

    private func writeStartInfo(cmdline: String, modules: [vmm_pvh_modlist_entry]) throws(VMMError) {
        var cmdlineBytes = Array(cmdline.utf8)
        cmdlineBytes.append(0)
        try write(cmdlineBytes, at: GuestLayout.cmdlineAddress)

        let memmap = GuestLayout.usableRAM(memoryBytes: vm.memoryBytes).map {
            vmm_pvh_memmap_entry(addr: $0.start, size: $0.size, type: UInt32(VMM_E820_RAM), reserved: 0)
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

    private func write<T>(_ values: [T], at gpa: UInt64) throws(VMMError) {
        let bytes = UInt64(MemoryLayout<T>.stride * values.count)
        guard bytes > 0 else { return }
        guard let target = vm.memory(at: gpa, count: bytes) else {
            throw .boot(.doesNotFit(what: "boot data", path: "", needEnd: gpa + bytes, memoryBytes: vm.memoryBytes))
        }
        values.withUnsafeBytes { target.copyMemory(from: $0) }
    }
}
