/// What serves one `--disk`: an image this VMM opens and serves itself, or
/// a vhost-user-blk backend (`vhost_user=on,socket=`).
enum DiskBackend {
    case image(DiskImage)
    case vhostUser(VhostUserBackend, DiskConfig)

    init(_ config: DiskConfig, locking: Bool = true) throws(VMMError) {
        guard let socket = config.vhostSocket else {
            self = .image(try DiskImage(config, locking: locking))
            return
        }
        let backend = try VhostUserBackend(socket: socket, option: "--disk",
                                           server: "a vhost-user-blk backend (qemu-storage-daemon --export type=vhost-user-blk)",
                                           queues: config.numQueues)
        self = .vhostUser(backend, config)
    }
}
