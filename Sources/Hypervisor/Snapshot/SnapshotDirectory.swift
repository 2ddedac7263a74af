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
        let fd = try create(name)
        defer { close(fd) }
        var done = 0
        while done < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + done, bytes.count - done) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { throw .system(SystemError("snapshot: write \(file(name))", errno: n < 0 ? errno : EIO)) }
            done += n
        }
        guard fsync(fd) == 0 else { throw .system(SystemError("snapshot: write \(file(name))", errno: errno)) }
    }

    /// The whole of `name`, refused past `limit` bytes.
    func read(_ name: String, limit: Int) throws(VMMError) -> [UInt8] {
        let fd = try openForReading(name)
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 64 << 10)
        while true {
            let n = Glibc.read(fd, &chunk, chunk.count)
            if n < 0 && errno == EINTR { continue }
            guard n >= 0 else { throw .system(SystemError("restore: read \(file(name))", errno: errno)) }
            if n == 0 { return bytes }
            bytes += chunk[0..<n]
            guard bytes.count <= limit else {
                throw .config(.invalidValue(option: "source_url", key: nil, value: path, reason: "\(file(name)) is larger than any snapshot's: not a snapshot of this VMM"))
            }
        }
    }
}
