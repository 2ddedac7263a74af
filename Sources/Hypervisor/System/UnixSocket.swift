#if canImport(Glibc)
import Glibc
#endif

/// UNIX stream sockets at paths the user named: listening (`--api-socket`,
/// `--vsock socket=`) or connected (`--fs socket=`).
enum UnixSocket {
    static func address(_ path: String, option: String, key: String) throws(VMMError) -> sockaddr_un {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let capacity = MemoryLayout.size(ofValue: address.sun_path)
        guard path.utf8.count < capacity else {
            throw .config(.invalidValue(option: option, key: key, value: path,
                                        reason: "longer than \(capacity - 1) bytes, the limit of a UNIX socket path"))
        }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: path.utf8)
        }
        return address
    }

    /// Connects to a server listening at `path`; `server` names it in the
    /// error ("virtiofsd").
    static func connect(to path: String, option: String, key: String, server: String) throws(VMMError) -> OwnedDescriptor {
        var address = try address(path, option: option, key: key)
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw .system(SystemError("\(option) \(key)=\(path): socket", errno: errno)) }
        let owned = OwnedDescriptor(fd)
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard connected == 0 else {
            let error = errno
            let hint = error == ENOENT || error == ECONNREFUSED ? ": start \(server) on it first" : ""
            throw .config(.unusable(option: "\(option) \(key)=\(path)", reason: "cannot connect (\(String(cString: strerror(error))))\(hint)"))
        }
        return owned
    }

    /// Binds and listens at `path`, non-blocking and owner-only from the
    /// start: whoever connects reaches the VM. A socket file left by a VMM
    /// that is gone is replaced; one a live process answers on is refused.
    static func listen(at path: String, option: String, key: String) throws(VMMError) -> OwnedDescriptor {
        var address = try address(path, option: option, key: key)
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
        guard fd >= 0 else { throw .system(SystemError("\(option) \(key)=\(path): socket", errno: errno)) }
        // Closed on every way out of here but success, which keeps it.
        let owned = OwnedDescriptor(fd)
        try removeStale(path, address: address, option: option)
        let mask = umask(0o177)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        let bindError = errno
        umask(mask)
        guard bound == 0 else {
            throw .system(SystemError("\(option) \(key)=\(path): bind", errno: bindError))
        }
        guard Glibc.listen(fd, 16) == 0 else {
            let error = errno
            unlink(path)
            throw .system(SystemError("\(option) \(key)=\(path): listen", errno: error))
        }
        return owned
    }

    /// With `--user`/`--group`, a socket file the VMM made becomes that
    /// identity's, so that the VMM can still remove it at exit (in a sticky
    /// directory such as /tmp only a file's owner may). It stays 0600.
    static func handOver(_ path: String, option: String, to identity: Identity) throws(VMMError) {
        guard identity.uid != nil || identity.gid != nil else { return }
        guard chown(path, identity.uid ?? uid_t.max, identity.gid ?? gid_t.max) == 0 else {
            throw .system(SystemError("\(option)\(path): give the socket to --user/--group (chown)", errno: errno))
        }
    }

    private static func removeStale(_ path: String, address: sockaddr_un, option: String) throws(VMMError) {
        var status = stat()
        guard lstat(path, &status) == 0 else { return }
        guard status.st_mode & S_IFMT == S_IFSOCK else {
            throw .config(.unusable(option: option, reason: "\(path) exists and is not a socket: remove it or choose another path"))
        }
        // Non-blocking: a live owner that does not accept (stopped, its
        // backlog full) answers EAGAIN at once instead of holding the start.
        let test = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
        guard test >= 0 else { return }
        defer { close(test) }
        var address = address
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(test, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        let error = errno
        // Nothing listens: a VMM that is gone left it.
        if connected != 0 && error == ECONNREFUSED {
            unlink(path)
            return
        }
        if connected != 0 && error == ENOENT { return }
        let how = connected == 0 || error == EAGAIN || error == EINPROGRESS ? "" : " (connect: \(String(cString: strerror(error))))"
        throw .config(.unusable(option: option, reason: "\(path) is in use by a live process\(how): stop it or choose another path"))
    }
}
