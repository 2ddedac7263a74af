import CVMMCore

/// `--fs tag=…,socket=…[,num_queues=N,queue_size=N,id=…,pci_segment=N]`:
/// a virtio-fs device served by a vhost-user backend (virtiofsd) listening
/// on `socket`, as Cloud Hypervisor writes it.
public struct FsConfig: Sendable, Equatable {
    /// What the guest mounts: `mount -t virtiofs TAG /mnt`.
    public var tag: String
    /// The backend's vhost-user socket.
    public var socket: String
    /// Request queues (the high-priority queue comes on top).
    public var numQueues: Int
    public var queueSize: Int
    public var id: String?
    public var pciSegment: Int

    /// Cloud Hypervisor's defaults.
    public static let defaultNumQueues = 1
    public static let defaultQueueSize = 1024
    /// virtio-fs's tag field.
    public static let maxTagBytes = 36

    public init(tag: String, socket: String, numQueues: Int = defaultNumQueues, queueSize: Int = defaultQueueSize,
                id: String? = nil, pciSegment: Int = 0) {
        self.tag = tag
        self.socket = socket
        self.numQueues = numQueues
        self.queueSize = queueSize
        self.id = id
        self.pciSegment = pciSegment
    }

    static let known = ["tag", "socket", "num_queues", "queue_size", "id", "pci_segment", "pci_device_id", "iommu"]

    public init(parsing text: String) throws(ConfigError) {
        let list = try OptionList(text, option: "--fs", known: Self.known)
        try list.refuseUnsupported(["pci_device_id"])
        // Cloud Hypervisor: "Device does not support being placed behind IOMMU".
        if try list.bool("iommu") == true {
            throw .conflict("--fs: virtiofsd reads guest RAM by guest addresses and cannot be placed behind the IOMMU: drop iommu=on")
        }
        let tag = try list.required("tag")
        guard tag.utf8.count <= Self.maxTagBytes else {
            throw .invalidValue(option: "--fs", key: "tag", value: tag, reason: "longer than \(Self.maxTagBytes) bytes, the most virtio-fs carries")
        }
        let socket = try list.required("socket")
        let queueSize = try list.integer("queue_size", in: 1...Int(VMM_VIRTQ_MAX_SIZE)) ?? Self.defaultQueueSize
        guard queueSize & (queueSize - 1) == 0 else {
            throw .invalidValue(option: "--fs", key: "queue_size", value: String(queueSize), reason: "not a power of two")
        }
        self.init(tag: tag, socket: socket, numQueues: try list.integer("num_queues", in: 1...63) ?? Self.defaultNumQueues,
                  queueSize: queueSize, id: list["id"], pciSegment: try list.pciSegment())
    }
}
