/// The parts of an ELF executable a loader needs: loadable segments and the
/// PVH entry point from the Xen ELF note. 32- and 64-bit, little-endian.
struct ELFImage {
    struct Segment: Equatable {
        let fileOffset: UInt64
        let physicalAddress: UInt64
        let fileSize: UInt64
        let memorySize: UInt64
    }

    let segments: [Segment]
    /// XEN_ELFNOTE_PHYS32_ENTRY, the 32-bit protected-mode entry.
    let pvhEntry: UInt32

    private static let maxProgramHeaders = 128
    private static let maxNoteBytes: UInt64 = 1 << 20
    private static let ptLoad: UInt32 = 1
    private static let ptNote: UInt32 = 4

    init(reading file: FileReader) throws(BootError) {
        let path = file.path
        guard file.size >= 52 else { throw .truncated(path: path) }
        let ident = try file.bytes(at: 0, count: 16)
        guard ident[0..<4].elementsEqual([0x7f, 0x45, 0x4c, 0x46]) else { throw .notAKernel(path: path) }
        let is64: Bool
        switch ident[4] {
        case 1: is64 = false
        case 2: is64 = true
        default: throw .unsupportedELF(path: path, reason: "unknown ELF class \(ident[4])")
        }
        guard ident[5] == 1 else { throw .unsupportedELF(path: path, reason: "not little-endian") }

        let header = ByteReader(try file.bytes(at: 0, count: is64 ? 64 : 52))
        let machine = header.u16(18)
        guard machine == 3 || machine == 62 else {
            throw .unsupportedELF(path: path, reason: "not an x86 executable (e_machine \(machine))")
        }
        let phoff = is64 ? header.u64(32) : UInt64(header.u32(28))
        let phentsize = Int(header.u16(is64 ? 54 : 42))
        let phnum = Int(header.u16(is64 ? 56 : 44))
        guard phnum > 0, phnum <= Self.maxProgramHeaders, phentsize >= (is64 ? 56 : 32) else {
            throw .unsupportedELF(path: path, reason: "bad program header table (\(phnum) entries of \(phentsize) bytes)")
        }
        let table = ByteReader(try file.bytes(at: phoff, count: phnum * phentsize))

        var segments: [Segment] = []
        var entry: UInt32?
        for i in 0..<phnum {
            let at = i * phentsize
            let type = table.u32(at)
            let segment = is64
                ? Segment(fileOffset: table.u64(at + 8), physicalAddress: table.u64(at + 24),
                          fileSize: table.u64(at + 32), memorySize: table.u64(at + 40))
                : Segment(fileOffset: UInt64(table.u32(at + 4)), physicalAddress: UInt64(table.u32(at + 12)),
                          fileSize: UInt64(table.u32(at + 16)), memorySize: UInt64(table.u32(at + 20)))
            switch type {
            case Self.ptLoad where segment.memorySize > 0:
                guard segment.fileSize <= segment.memorySize else {
                    throw .unsupportedELF(path: path, reason: "a segment's file size exceeds its memory size")
                }
                guard segment.fileOffset <= file.size, segment.fileSize <= file.size - segment.fileOffset else {
                    throw .truncated(path: path)
                }
                segments.append(segment)
            case Self.ptNote where entry == nil:
                guard segment.fileSize <= Self.maxNoteBytes else {
                    throw .unsupportedELF(path: path, reason: "note segment too large")
                }
                entry = Self.pvhEntry(inNotes: try file.bytes(at: segment.fileOffset, count: Int(segment.fileSize)))
            default:
                break
            }
        }
        guard !segments.isEmpty else { throw .unsupportedELF(path: path, reason: "no loadable segment") }
        guard let entry else { throw .noPVHNote(path: path) }
        self.segments = segments
        self.pvhEntry = entry
    }

    /// Walks Elf_Nhdr records (namesz, descsz, type, name, desc; 4-byte aligned).
    static func pvhEntry(inNotes bytes: [UInt8]) -> UInt32? {
        let notes = ByteReader(bytes)
        var at = 0
        while at + 12 <= bytes.count {
            let nameSize = Int(notes.u32(at))
            let descSize = Int(notes.u32(at + 4))
            let type = notes.u32(at + 8)
            let nameAt = at + 12
            let descAt = nameAt + (nameSize + 3) & ~3
            let next = descAt + (descSize + 3) & ~3
            guard nameSize <= bytes.count, descSize <= bytes.count, next <= bytes.count else { return nil }
            let name = bytes[nameAt..<nameAt + nameSize].prefix { $0 != 0 }
            if type == 18, name.elementsEqual("Xen".utf8), descSize >= 4 {
                return notes.u32(descAt)
            }
            at = next
        }
        return nil
    }
}

/// Little-endian field access into a byte array; callers check bounds first.
struct ByteReader {
    let bytes: [UInt8]
    init(_ bytes: [UInt8]) { self.bytes = bytes }

    func u16(_ at: Int) -> UInt16 { UInt16(bytes[at]) | UInt16(bytes[at + 1]) << 8 }
    func u32(_ at: Int) -> UInt32 { UInt32(u16(at)) | UInt32(u16(at + 2)) << 16 }
    func u64(_ at: Int) -> UInt64 { UInt64(u32(at)) | UInt64(u32(at + 4)) << 32 }
}
