import CVMMCore

#if canImport(Glibc)
import Glibc
#endif

/// A virtio-fs share's vhost-user backend (`--fs socket=`), connected and
/// greeted while the VMM may still be privileged. The connection outlives
/// each boot's device: virtiofsd serves one frontend for its whole life.
final class FsBackend {
    let config: FsConfig
    let handle: OpaquePointer

    init(_ config: FsConfig) throws(VMMError) {
        let option = "--fs socket=\(config.socket)"
        let socket = try UnixSocket.connect(to: config.socket, option: "--fs", key: "socket", server: "virtiofsd (or another vhost-user-fs backend)")
        var handle: OpaquePointer?
        let r = vmm_vhost_user_connect(socket.release(), &handle)
        guard r == 0, let handle else {
            let reason = switch -r {
            case ETIMEDOUT: "the backend did not answer the vhost-user handshake within 5 s"
            case EPROTONOSUPPORT: "the backend offers no virtio 1.0 device (VIRTIO_F_VERSION_1)"
            default: "the vhost-user handshake failed (\(String(cString: strerror(-r))))"
            }
            throw .config(.unusable(option: option, reason: reason))
        }
        let most = Int(vmm_vhost_user_max_queues(handle))
        if most > 0, config.numQueues + 1 > most {
            vmm_vhost_user_close(handle)
            throw .config(.unusable(option: option, reason: "the backend serves \(most) queues, fewer than num_queues=\(config.numQueues) and the high-priority one"))
        }
        self.config = config
        self.handle = handle
    }

    deinit { vmm_vhost_user_close(handle) }
}
