import CVMMCore

#if canImport(Glibc)
import Glibc
#endif

/// The connection a migration runs on: the destination listens and takes
/// one connection, the source connects.
enum MigrationSocket {
    /// The destination's listening socket; a UNIX one's file is removed
    /// once the source has connected (`accept`).
    static func listen(_ url: MigrationURL) throws(VMMError) -> OwnedDescriptor {
        switch url {
        case .unix(let path):
            return try UnixSocket.listen(at: path, option: "receive-migration", key: "receiver_url")
        case .tcp(let host, let port):
            var address = try socketAddress(host: host, port: port)
            let fd = socket(Int32(address.ss_family), Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
            guard fd >= 0 else { throw .system(SystemError("receive-migration \(url): socket", errno: errno)) }
            let owned = OwnedDescriptor(fd)
            var one: Int32 = 1
            setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
            let size = length(of: address)
            let bound = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, size) }
            }
            guard bound == 0, Glibc.listen(fd, 1) == 0 else {
                let error = errno
                let hint = error == EADDRINUSE ? ": the port is taken, choose another" : ""
                throw .config(.unusable(option: "receive-migration receiver_url=\(url)", reason: "cannot listen (\(String(cString: strerror(error))))\(hint)"))
            }
            return owned
        }
    }

    /// Waits for the source's connection; a stop signal (`abort`
    /// readable) ends the wait.
    static func accept(_ listener: borrowing OwnedDescriptor, url: MigrationURL, abort: Int32) throws(VMMError) -> OwnedDescriptor {
        defer { if case .unix(let path) = url { unlink(path) } }
        while true {
            var ready = [pollfd(fd: listener.raw, events: Int16(POLLIN), revents: 0), pollfd(fd: abort, events: Int16(POLLIN), revents: 0)]
            let n = poll(&ready, 2, -1)
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { throw .system(SystemError("receive-migration: wait for the source", errno: errno)) }
            if ready[1].revents != 0 { throw .system(SystemError("receive-migration: stopped by a signal while waiting for the source", errno: ECANCELED)) }
            let fd = vmm_accept_client(listener.raw)
            if fd == -EAGAIN || fd == -EINTR || fd == -ECONNABORTED { continue }
            guard fd >= 0 else { throw .system(SystemError("receive-migration: accept the source's connection", errno: -fd)) }
            noDelay(fd)
            return OwnedDescriptor(fd)
        }
    }

    /// Connects to a destination that is listening, within `timeoutMs`.
    static func connect(_ url: MigrationURL, timeoutMs: Int32) throws(VMMError) -> OwnedDescriptor {
        func refuse(_ error: Int32) -> VMMError {
            let hint = error == ENOENT || error == ECONNREFUSED ? ": start receive-migration on the destination first" : ""
            return .config(.unusable(option: "send-migration destination_url=\(url)", reason: "cannot connect (\(String(cString: strerror(error))))\(hint)"))
        }
        switch url {
        case .unix(let path):
            return try UnixSocket.connect(to: path, option: "send-migration", key: "destination_url", server: "the destination's receive-migration")
        case .tcp(let host, let port):
            var address = try socketAddress(host: host, port: port)
            let fd = socket(Int32(address.ss_family), Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
            guard fd >= 0 else { throw .system(SystemError("send-migration \(url): socket", errno: errno)) }
            let owned = OwnedDescriptor(fd)
            let size = length(of: address)
            let r = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, size) }
            }
            if r != 0 {
                guard errno == EINPROGRESS else { throw refuse(errno) }
                var ready = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
                guard poll(&ready, 1, timeoutMs) == 1 else { throw refuse(ETIMEDOUT) }
                var error: Int32 = 0
                var size = socklen_t(MemoryLayout<Int32>.size)
                getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &size)
                guard error == 0 else { throw refuse(error) }
            }
            noDelay(fd)
            return owned
        }
    }

    /// Replies are small and awaited: not held back for more bytes.
    private static func noDelay(_ fd: Int32) {
        var one: Int32 = 1
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
    }

    private static func length(of address: sockaddr_storage) -> socklen_t {
        socklen_t(Int32(address.ss_family) == AF_INET6 ? MemoryLayout<sockaddr_in6>.size : MemoryLayout<sockaddr_in>.size)
    }

    private static func socketAddress(host: String, port: UInt16) throws(VMMError) -> sockaddr_storage {
        var storage = sockaddr_storage()
        let parsed = withUnsafeMutableBytes(of: &storage) { raw -> Bool in
            if host.contains(":") {
                let v6 = raw.baseAddress!.assumingMemoryBound(to: sockaddr_in6.self)
                v6.pointee.sin6_family = sa_family_t(AF_INET6)
                v6.pointee.sin6_port = port.bigEndian
                return inet_pton(AF_INET6, host, &v6.pointee.sin6_addr) == 1
            }
            let v4 = raw.baseAddress!.assumingMemoryBound(to: sockaddr_in.self)
            v4.pointee.sin_family = sa_family_t(AF_INET)
            v4.pointee.sin_port = port.bigEndian
            return inet_pton(AF_INET, host, &v4.pointee.sin_addr) == 1
        }
        guard parsed else { throw .config(.invalidValue(option: "migration", key: nil, value: host, reason: "not an IP address")) }
        return storage
    }
}
