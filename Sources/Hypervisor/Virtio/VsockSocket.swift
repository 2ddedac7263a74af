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

    /// With `--user`/`--group` the socket file becomes that identity's.
    func handOver(to identity: Identity) throws(VMMError) {
        try UnixSocket.handOver(config.socket, option: "--vsock socket=", to: identity)
    }
}
