import CVMMCore

/// Linux's x86 boot protocol (Documentation/arch/x86/boot.rst), 64-bit
/// entry: the protected-mode kernel at 1 MiB, a zero page (boot_params)
/// with the setup header, E820 map, command line, initramfs and RSDP, and
/// vCPU 0 in long mode at load address + 0x200.
extension KernelLoader {
    static let zeroPageAddress: UInt64 = 0x7000
    static let pageTablesAddress: UInt64 = 0x9000
    static let bzImageLoadAddress: UInt64 = 0x10_0000

    /// Offsets into boot_params and its setup header.
    private enum ZeroPage {
        static let acpiRSDP = 0x070
        static let e820Entries = 0x1e8
        static let typeOfLoader = 0x210
        static let loadFlags = 0x211
        static let ramdiskImage = 0x218
        static let ramdiskSize = 0x21c
        static let cmdLinePointer = 0x228
        static let e820Table = 0x2d0
        static let e820Max = 128
    }

    func loadBzImage(kernel: FileReader, initramfs: FileReader?, cmdline: String) throws(VMMError) {
        var zeroPage = [UInt8](repeating: 0, count: 4096)
        let kernelEnd: UInt64
        do throws(BootError) {
            let header = try BzImageHeader(reading: kernel, cmdlineLength: cmdline.utf8.count)
            let setup = BzImageHeader.Offset.setupSects
            zeroPage.replaceSubrange(setup..<setup + header.setupHeader.count, with: header.setupHeader)
            kernelEnd = Self.bzImageLoadAddress + header.footprint
            guard let target = vm.memory(at: Self.bzImageLoadAddress, count: header.footprint) else {
                throw .doesNotFit(what: "--kernel", path: kernel.path, needEnd: kernelEnd, memoryBytes: vm.memoryBytes)
            }
            try kernel.read(at: header.payloadOffset, into: UnsafeMutableRawBufferPointer(rebasing: target[..<Int(header.payloadSize)]))

            if let initramfs {
                let limit = min(GuestLayout.lowRAMEnd(memoryBytes: vm.memoryBytes), UInt64(header.initrdAddrMax) + 1)
                let at = try loadInitramfs(initramfs, above: kernelEnd, below: limit)
                Self.put(&zeroPage, ZeroPage.ramdiskImage, UInt32(at))
                Self.put(&zeroPage, ZeroPage.ramdiskSize, UInt32(initramfs.size))
            }
        } catch {
            throw .boot(error)
        }

        zeroPage[ZeroPage.typeOfLoader] = 0xff
        zeroPage[ZeroPage.loadFlags] |= 0x01 // LOADED_HIGH
        Self.put(&zeroPage, ZeroPage.cmdLinePointer, UInt32(GuestLayout.cmdlineAddress))
        Self.put(&zeroPage, ZeroPage.acpiRSDP, ACPITables.rsdpAddress)
        let e820 = GuestLayout.memoryMap(memoryBytes: vm.memoryBytes).prefix(ZeroPage.e820Max)
        zeroPage[ZeroPage.e820Entries] = UInt8(e820.count)
        for (i, entry) in e820.enumerated() {
            let at = ZeroPage.e820Table + 20 * i
            Self.put(&zeroPage, at, entry.range.start)
            Self.put(&zeroPage, at + 8, entry.range.size)
            Self.put(&zeroPage, at + 16, entry.type)
        }
        try writeCmdline(cmdline)
        try write(zeroPage, at: Self.zeroPageAddress)
        let r = vmm_vcpu_setup_linux64(vm.handle, Self.bzImageLoadAddress + 0x200, Self.zeroPageAddress,
                                       GuestLayout.gdtAddress, Self.pageTablesAddress)
        guard r == 0 else { throw .system(SystemError("set up vCPU 0 for the 64-bit Linux entry", returned: r)) }
    }

    private static func put<T: FixedWidthInteger>(_ bytes: inout [UInt8], _ offset: Int, _ value: T) {
        withUnsafeBytes(of: value.littleEndian) { bytes.replaceSubrange(offset..<offset + MemoryLayout<T>.size, with: $0) }
    }
}
