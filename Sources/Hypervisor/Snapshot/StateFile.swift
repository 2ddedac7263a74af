/// A snapshot's `state` file: named records, each the bytes of one C state
/// struct with its layout's version, behind a header and ahead of a
/// checksum, so a truncated or corrupted file is refused before any of
/// it reaches KVM or a device.
///
/// Layout (little-endian): "VMMSTATE", format u32, count u32; each record
/// name length u16, name, version u32, length u64, bytes; then FNV-1a 64
/// of everything before it.
struct StateFile {
    static let magic = Array("VMMSTATE".utf8)
    static let format: UInt32 = 1
    /// More than any VM's state (288 vCPUs and 100 devices are under 6 MiB):
    /// a larger file is not one of ours, and is not read into memory.
    static let maxBytes = 64 << 20

    private(set) var records: [(name: String, version: UInt32, bytes: [UInt8])] = []

    init() {}

    mutating func append<T>(_ name: String, version: Int32, _ value: T) {
        var copy = value
        records.append((name, UInt32(version), withUnsafeBytes(of: &copy) { Array($0) }))
    }

    /// The record's struct, if its version and size are this build's.
    func value<T>(_ name: String, version: Int32, as: T.Type) throws(SnapshotError) -> T {
        guard let record = records.first(where: { $0.name == name }) else { throw .missing(name) }
        guard record.version == UInt32(version) else { throw .version(name, found: record.version, supported: UInt32(version)) }
        guard record.bytes.count == MemoryLayout<T>.size else { throw .corrupt("record \(name) has \(record.bytes.count) bytes, not \(MemoryLayout<T>.size)") }
        return record.bytes.withUnsafeBytes { $0.loadUnaligned(as: T.self) }
    }

    /// `init(parsing:)`, its refusal in the words of `option` (a restore, a migration's receiver).
    init(parsing bytes: [UInt8], option: String) throws(VMMError) {
        do {
            try self.init(parsing: bytes)
        } catch {
            throw .config(.unusable(option: option, reason: "\(error)"))
        }
    }

    /// `value`, its refusal in the words of a restore.
    func load<T>(_ name: String, version: Int32, as type: T.Type) throws(VMMError) -> T {
        do {
            return try value(name, version: version, as: type)
        } catch {
            throw .config(.unusable(option: "--restore", reason: "\(error)"))
        }
    }

    func names(prefix: String) -> [String] { records.map(\.name).filter { $0.hasPrefix(prefix) } }

    var serialized: [UInt8] {
        var out = Self.magic
        put(Self.format, &out)
        put(UInt32(records.count), &out)
        for record in records {
            let name = Array(record.name.utf8)
            put(UInt16(name.count), &out)
            out += name
            put(record.version, &out)
            put(UInt64(record.bytes.count), &out)
            out += record.bytes
        }
        put(Self.checksum(out), &out)
        return out
    }

    init(parsing bytes: [UInt8]) throws(SnapshotError) {
        guard bytes.count >= Self.magic.count + 16, Array(bytes.prefix(Self.magic.count)) == Self.magic else {
            throw .corrupt("not a snapshot state file (no VMMSTATE header)")
        }
        let body = bytes.dropLast(8)
        var reader = Reader(bytes: Array(bytes), at: Self.magic.count)
        var trailer = Reader(bytes: Array(bytes), at: bytes.count - 8)
        let stored = trailer.u64()
        guard stored == Self.checksum(Array(body)) else { throw .corrupt("the state file's checksum does not match: it was changed or cut short") }
        let format = reader.u32()
        guard format == Self.format else { throw .version("the state file", found: format ?? 0, supported: Self.format) }
        guard let count = reader.u32() else { throw .corrupt("the state file ends in its header") }
        for _ in 0..<count {
            guard let nameLength = reader.u16(), let name = reader.bytes(Int(nameLength)), let version = reader.u32(),
                  let length = reader.u64(), length <= UInt64(Self.maxBytes), let payload = reader.bytes(Int(length)),
                  reader.offset <= body.count else {
                throw .corrupt("the state file ends inside a record")
            }
            records.append((String(decoding: name, as: UTF8.self), version, payload))
        }
    }

    private func put<I: FixedWidthInteger>(_ value: I, _ out: inout [UInt8]) {
        withUnsafeBytes(of: value.littleEndian) { out += $0 }
    }

    static func checksum(_ bytes: [UInt8]) -> UInt64 {
        bytes.reduce(0xcbf2_9ce4_8422_2325) { ($0 ^ UInt64($1)) &* 0x100_0000_01b3 }
    }

    private struct Reader {
        let bytes: [UInt8]
        var offset: Int
        init(bytes: [UInt8], at offset: Int) {
            self.bytes = bytes
            self.offset = offset
        }
        mutating func bytes(_ count: Int) -> [UInt8]? {
            guard count >= 0, count <= bytes.count - offset else { return nil }
            defer { offset += count }
            return Array(bytes[offset..<offset + count])
        }
        mutating func integer<I: FixedWidthInteger>(_: I.Type) -> I? {
            bytes(MemoryLayout<I>.size).map { $0.withUnsafeBytes { I(littleEndian: $0.loadUnaligned(as: I.self)) } }
        }
        mutating func u16() -> UInt16? { integer(UInt16.self) }
        mutating func u32() -> UInt32? { integer(UInt32.self) }
        mutating func u64() -> UInt64? { integer(UInt64.self) }
    }
}

/// Why a snapshot cannot be taken or restored, in words a user can act on.
enum SnapshotError: Error, CustomStringConvertible {
    case missing(String)
    case version(String, found: UInt32, supported: UInt32)
    case corrupt(String)

    var description: String {
        switch self {
        case .missing(let name): "the snapshot has no \(name) state: it is incomplete or from another VM shape"
        case .version(let name, let found, let supported):
            "\(name) is version \(found), this VMM reads version \(supported): restore it with the VMM version that took it"
        case .corrupt(let why): "the snapshot is damaged: \(why)"
        }
    }
}
