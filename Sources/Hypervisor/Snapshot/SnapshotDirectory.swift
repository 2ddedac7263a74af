import SystemPackage

#if canImport(Glibc)
import Glibc
#endif

/// Where a snapshot lives: Cloud Hypervisor's `file:///DIR`, a directory
/// that exists (as in Cloud Hypervisor, the VMM does not make it). It
/// holds `config.json` (the VM's configuration as `vm.info` gives it),
/// `state` (`StateFile`) and `memory` (guest RAM, sparse).
struct SnapshotDirectory {
    static let scheme = "file://"
    let path: String

    /// `what` names the field for errors: `destination_url`, `source_url`.
    init(url: String, what: String) throws(ConfigError) {
        guard url.hasPrefix(Self.scheme) else {
            throw .invalidValue(option: what, key: nil, value: url, reason: "only file:// URLs are supported for snapshots (file:///path/to/dir)")
        }
        let path = String(url.dropFirst(Self.scheme.count))
        guard path.hasPrefix("/") else {
            throw .invalidValue(option: what, key: nil, value: url, reason: "give an absolute directory: file:///path/to/dir")
        }
        var st = stat()
        guard stat(path, &st) == 0, st.st_mode & S_IFMT == S_IFDIR else {
            throw .invalidValue(option: what, key: nil, value: url, reason: "\(path) is not a directory: create it first (mkdir -p \(path))")
        }
        self.path = path
    }

    func file(_ name: String) -> String { path.hasSuffix("/") ? path + name : path + "/" + name }

    /// Creates or replaces `name`; the descriptor is the caller's.
    func create(_ name: String) throws(VMMError) -> Int32 {
        let fd = open(file(name), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0o600)
        guard fd >= 0 else { throw .system(SystemError("snapshot: create \(file(name))", errno: errno)) }
        return fd
    }

    func openForReading(_ name: String) throws(VMMError) -> Int32 {
        let fd = open(file(name), O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw .system(SystemError("restore: open \(file(name))", errno: errno)) }
        return fd
    }

    func write(_ bytes: [UInt8], to name: String) throws(VMMError) {
        let fd = FileDescriptor(rawValue: try create(name))
        defer { try? fd.close() }
        do {
            _ = try fd.writeAll(bytes)
        } catch {
            throw .system(SystemError("snapshot: write \(file(name))", errno: (error as? Errno)?.rawValue ?? EIO))
        }
        guard fsync(fd.rawValue) == 0 else { throw .system(SystemError("snapshot: write \(file(name))", errno: errno)) }
    }

    /// The whole of `name`, refused past `limit` bytes.
    func read(_ name: String, limit: Int) throws(VMMError) -> [UInt8] {
        let reader: FileReader
        do {
            reader = try FileReader(path: file(name), option: "--restore source_url")
        } catch {
            throw .boot(error)
        }
        guard reader.size <= UInt64(limit) else {
            throw .config(.invalidValue(option: "source_url", key: nil, value: path, reason: "\(file(name)) is larger than any snapshot's: not a snapshot of this VMM"))
        }
        do {
            return try reader.bytes(at: 0, count: Int(reader.size))
        } catch {
            throw .boot(error)
        }
    }
}
