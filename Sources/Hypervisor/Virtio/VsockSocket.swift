#if canImport(Glibc)
import Glibc
#endif

/// The hybrid vsock's listening socket (`--vsock socket=`), bound while
/// the VMM may still be privileged and kept across reboots; the file goes
/// when the device does.
final class VsockSocket {
    let config: VsockConfig
    private let descriptor: OwnedDescriptor
    var fd: Int32 { descriptor.raw }

    init(_ config: VsockConfig) throws(VMMError) {
        descriptor = try UnixSocket.listen(at: config.socket, option: "--vsock", key: "socket")
        self.config = config
    }

    deinit { unlink(config.socket) }

    /// With `--user`/`--group` the socket file becomes that identity's, so
    /// the VMM can still remove it at exit; it stays 0600.
    func handOver(to identity: Identity) throws(VMMError) {
        guard identity.uid != nil || identity.gid != nil else { return }
        guard chown(config.socket, identity.uid ?? uid_t.max, identity.gid ?? gid_t.max) == 0 else {
            throw .system(SystemError("--vsock socket=\(config.socket): give the socket to --user/--group (chown)", errno: errno))
        }
    }
}
