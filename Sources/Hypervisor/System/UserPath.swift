#if canImport(Glibc)
import Glibc
#endif

/// Opens a path the user named (`--kernel`, `--serial file=`, `--rng src=`,
/// a `vm.create` payload…) without ever blocking: the open runs where the
/// termination signals are blocked, and a FIFO would hold it until a peer
/// came. Opened with O_NONBLOCK, its type checked against what the option
/// takes, then made blocking again for the reads and writes that follow.
enum UserPath {
    enum Kind: Sendable {
        case regularFile, characterDevice

        var name: String { self == .regularFile ? "a regular file" : "a character device" }
    }

    /// Why the path cannot serve, phrased to follow "'PATH' ".
    struct Refusal: Error, Sendable { let reason: String }

    /// The descriptor (close-on-exec), what it is, and its size.
    static func open(_ path: String, flags: Int32, mode: mode_t = 0,
                     accept: [Kind]) throws(Refusal) -> (fd: Int32, kind: Kind, size: Int64) {
        guard !path.isEmpty else { throw Refusal(reason: "is empty: name a file") }
        let fd = Glibc.open(path, flags | O_NONBLOCK | O_CLOEXEC, mode)
        guard fd >= 0 else {
            let error = errno
            // Opening a FIFO for writing with no reader, without blocking.
            throw Refusal(reason: error == ENXIO ? "is a FIFO or socket with nothing at its other end: give \(names(accept))"
                                                : String(cString: strerror(error)))
        }
        var st = stat()
        guard fstat(fd, &st) == 0 else {
            let error = errno
            close(fd)
            throw Refusal(reason: String(cString: strerror(error)))
        }
        let type = st.st_mode & S_IFMT
        let kind: Kind? = type == S_IFREG ? .regularFile : type == S_IFCHR ? .characterDevice : nil
        guard let kind, accept.contains(kind) else {
            close(fd)
            throw Refusal(reason: "is \(describe(type)), not \(names(accept))")
        }
        let flags = fcntl(fd, F_GETFL)
        guard flags >= 0, fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) == 0 else {
            let error = errno
            close(fd)
            throw Refusal(reason: String(cString: strerror(error)))
        }
        return (fd, kind, Int64(st.st_size))
    }

    private static func names(_ kinds: [Kind]) -> String { kinds.map(\.name).joined(separator: " or ") }

    private static func describe(_ type: mode_t) -> String {
        switch type {
        case S_IFDIR: "a directory"
        case S_IFIFO: "a FIFO"
        case S_IFSOCK: "a socket"
        case S_IFBLK: "a block device"
        case S_IFCHR: "a character device"
        default: "a regular file"
        }
    }
}
