import CVMMCore

#if canImport(Glibc)
import Glibc
#endif

/// A file descriptor with exactly one owner, which closes it: it cannot be
/// copied, so no second holder can close it too or use it after the close.
struct OwnedDescriptor: ~Copyable, Sendable {
    let raw: Int32

    /// Takes ownership of `raw`, an open descriptor.
    init(_ raw: Int32) { self.raw = raw }

    /// Opens `path`; `what` names it in the error.
    init(opening path: String, flags: Int32, what: (Int32) -> String) throws(SystemError) {
        let fd = open(path, flags | O_CLOEXEC)
        guard fd >= 0 else {
            let error = errno
            throw SystemError(what(error), errno: error)
        }
        raw = fd
    }

    /// A new eventfd (close-on-exec, plus `nonBlocking`); `what` names its use in the error.
    init(eventfd what: String, nonBlocking: Bool) throws(SystemError) {
        let fd = eventfd(0, Int32(EFD_CLOEXEC) | (nonBlocking ? Int32(EFD_NONBLOCK) : 0))
        guard fd >= 0 else { throw SystemError("eventfd for \(what)", errno: errno) }
        raw = fd
    }

    /// Hands the descriptor to a new owner (the C core) without closing it.
    consuming func release() -> Int32 {
        let fd = raw
        discard self
        return fd
    }

    deinit { close(raw) }
}
