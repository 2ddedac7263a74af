/// The setup header of a bzImage (Linux's x86 boot protocol,
/// Documentation/arch/x86/boot.rst), read and checked before anything is
/// loaded: a hostile image's offsets must not reach past what was read.
struct BzImageHeader {
    /// Offsets into boot_params, where the setup header sits at 0x1f1.
    enum Offset {
        static let setupSects = 0x1f1
        static let jump = 0x200
        static let version = 0x206
        static let initrdAddrMax = 0x22c
        static let xloadFlags = 0x236
        static let cmdlineSize = 0x238
        static let initSize = 0x260
    }

    /// How much of the file is read as the header.
    static let readSize = 0x280

    /// The bytes to copy into the zero page at `Offset.setupSects`.
    let setupHeader: [UInt8]
    /// Where the protected-mode kernel starts in the file, and its size.
    let payloadOffset: UInt64
    let payloadSize: UInt64
    /// Bytes the in-place decompressor needs from the load address.
    let footprint: UInt64
    /// The highest address the kernel accepts an initramfs at.
    let initrdAddrMax: UInt32

    init(reading kernel: FileReader, cmdlineLength: Int) throws(BootError) {
        let header = try kernel.bytes(at: 0, count: Int(min(kernel.size, UInt64(Self.readSize))))
        guard header.count == Self.readSize else { throw .truncated(path: kernel.path) }
        let reader = ByteReader(header)
        let version = reader.u16(Offset.version)
        guard version >= 0x020c, reader.u16(Offset.xloadFlags) & 1 == 1 else {
            throw .unsupportedBzImage(path: kernel.path,
                reason: "boot protocol 2.\(version & 0xff) without a 64-bit entry (needs 2.12+ and XLF_KERNEL_64)")
        }
        guard UInt64(cmdlineLength) < UInt64(reader.u32(Offset.cmdlineSize)) else {
            throw .unsupportedBzImage(path: kernel.path, reason: "the command line is longer than the kernel takes")
        }
        // The setup header runs from 0x1f1 to the end its jump instruction names.
        let headerEnd = 0x202 + Int(header[Offset.jump + 1])
        guard headerEnd <= Self.readSize else {
            throw .unsupportedBzImage(path: kernel.path, reason: "a setup header that ends at \(headerEnd), past 0x\(String(Self.readSize, radix: 16))")
        }
        setupHeader = Array(header[Offset.setupSects..<headerEnd])
        let setupSects = UInt64(header[Offset.setupSects] == 0 ? 4 : header[Offset.setupSects])
        payloadOffset = (setupSects + 1) * 512
        guard payloadOffset < kernel.size else { throw .truncated(path: kernel.path) }
        payloadSize = kernel.size - payloadOffset
        footprint = max(payloadSize, UInt64(reader.u32(Offset.initSize)))
        initrdAddrMax = reader.u32(Offset.initrdAddrMax)
    }
}
