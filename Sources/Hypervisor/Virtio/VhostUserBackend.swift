import CVMMCore

#if canImport(Glibc)
import Glibc
#endif

/// A vhost-user backend's connection (`--fs socket=`, `--disk
/// vhost_user=on,socket=`), connected and greeted while the VMM may still
/// be privileged. It outlives each boot's device: backends such as
/// virtiofsd serve one frontend for their whole life.
final class VhostUserBackend {
    let handle: OpaquePointer

    /// `option` names the device in errors (`--fs`), `server` what should
    /// be listening (`virtiofsd`); `queues`: what the device will ask for.
    init(socket path: String, option: String, server: String, queues: Int) throws(VMMError) {
        let socket = try UnixSocket.connect(to: path, option: option, key: "socket", server: server)
        var handle: OpaquePointer?
        let r = vmm_vhost_user_connect(socket.release(), &handle)
        let named = "\(option) socket=\(path)"
        guard r == 0, let handle else {
            let reason = switch -r {
            case ETIMEDOUT: "the backend did not answer the vhost-user handshake within 5 s"
            case EPROTONOSUPPORT: "the backend offers no virtio 1.0 device (VIRTIO_F_VERSION_1)"
            default: "the vhost-user handshake failed (\(String(cString: strerror(-r))))"
            }
            throw .config(.unusable(option: named, reason: reason))
        }
        let most = Int(vmm_vhost_user_max_queues(handle))
        if most > 0, queues > most {
            vmm_vhost_user_close(handle)
            throw .config(.unusable(option: named, reason: "the backend serves \(most) queue(s), fewer than the \(queues) the device needs: lower num_queues"))
        }
        self.handle = handle
    }

    deinit { vmm_vhost_user_close(handle) }
}

/// A virtio-fs share and its backend.
final class FsBackend {
    let config: FsConfig
    let backend: VhostUserBackend

    init(_ config: FsConfig) throws(VMMError) {
        backend = try VhostUserBackend(socket: config.socket, option: "--fs", server: "virtiofsd (or another vhost-user-fs backend)",
                                       queues: config.numQueues + 1)
        self.config = config
    }
}
