// libFuzzer target: the kernel image readers — the PVH ELF reader
// (program headers, the Xen PVH note) and the bzImage setup header —
// on an image in an unlinked scratch file, read through the same FileReader a launch uses.
@testable import Hypervisor
import Glibc

private let image: Int32 = {
    var template = Array("/tmp/fuzz-kernel-XXXXXX".utf8CString)
    let fd = mkstemp(&template)
    if fd >= 0 { unlink(template) }
    return fd
}()

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzKernelImage(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard image >= 0, ftruncate(image, 0) == 0, pwrite(image, data, size, 0) == size,
          let reader = try? FileReader(path: "/proc/self/fd/\(image)", option: "--kernel") else { return 0 }
    if let elf = try? ELFImage(reading: reader) {
        // What the loader then trusts: every segment lies within the file.
        for segment in elf.segments {
            precondition(segment.fileOffset <= reader.size && segment.fileSize <= reader.size - segment.fileOffset)
        }
    }
    for cmdline in [0, 4096] {
        if let header = try? BzImageHeader(reading: reader, cmdlineLength: cmdline) {
            precondition(header.payloadOffset + header.payloadSize == reader.size)
            precondition(header.footprint >= header.payloadSize && header.setupHeader.count <= 0x280 - 0x1f1)
        }
    }
    return 0
}
