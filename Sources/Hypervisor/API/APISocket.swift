#if canImport(Glibc)
import Glibc
#endif

/// `--api-socket path=PATH`, `--api-socket fd=N` or a bare path.
public enum APISocketConfig: Sendable, Equatable {
    case path(String)
    /// A listening UNIX socket the parent bound.
    case fd(Int32)

    public init(parsing text: String) throws(ConfigError) {
        guard text.contains("=") else {
            guard !text.isEmpty else { throw .missing(option: "--api-socket", what: "give path=PATH or fd=N") }
            self = .path(text)
            return
        }
        let list = try OptionList(text, option: "--api-socket", known: ["path", "fd"])
        switch (list["path"], list["fd"]) {
        case (let path?, nil):
            guard !path.isEmpty else { throw .missing(option: "--api-socket", what: "path= needs a path") }
            self = .path(path)
        case (nil, let fd?):
            guard let number = Int32(fd), number > 2 else {
                throw .invalidValue(option: "--api-socket", key: "fd", value: fd, reason: "expected an open descriptor above 2")
            }
            self = .fd(number)
        case (nil, nil): throw .missing(option: "--api-socket", what: "give path=PATH or fd=N")
        default: throw .conflict("--api-socket: give path= or fd=, not both")
        }
    }

    public var description: String {
        switch self {
        case .path(let path): "path=\(path)"
        case .fd(let fd): "fd=\(fd)"
        }
    }
}

/// The API's listening socket, bound before the privilege drop.
final class APIListener {
    private let descriptor: OwnedDescriptor
    var fd: Int32 { descriptor.raw }
    /// The file to remove on exit; nil for a socket handed over with fd=.
    let path: String?

    init(_ config: APISocketConfig) throws(VMMError) {
        switch config {
        case .fd(let fd):
            var type: Int32 = 0
            var length = socklen_t(MemoryLayout<Int32>.size)
            var accepting: Int32 = 0
            var acceptingLength = socklen_t(MemoryLayout<Int32>.size)
            guard getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &length) == 0,
                  getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &accepting, &acceptingLength) == 0,
                  type == Int32(SOCK_STREAM.rawValue) else {
                throw .config(.unusable(option: "--api-socket", reason: "fd=\(fd) is not an open stream socket: pass a bound UNIX socket"))
            }
            if accepting == 0, listen(fd, 16) != 0 {
                throw .system(SystemError("--api-socket fd=\(fd): listen", errno: errno))
            }
            _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
            descriptor = OwnedDescriptor(fd)
            path = nil
        case .path(let path):
            descriptor = try UnixSocket.listen(at: path, option: "--api-socket", key: "path")
            self.path = path
        }
    }

    deinit {
        if let path { unlink(path) }
    }

    /// With `--user`/`--group`, the socket file becomes that identity's, so
    /// that the VMM can still remove it at exit (in a sticky directory such
    /// as /tmp only a file's owner may). It stays 0600: the dropped
    /// identity, which the VMM is, and root connect; give each VM a uid of
    /// its own so that no other VMM is that identity.
    func handOver(to identity: Identity) throws(VMMError) {
        guard let path else { return }
        try UnixSocket.handOver(path, option: "--api-socket path=", to: identity)
    }
}
