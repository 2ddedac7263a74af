/// `--vsock cid=N,socket=PATH[,id=…,iommu=off,pci_segment=N]`: the VM's
/// virtio-vsock (one at most, as in Cloud Hypervisor), whose host side is
/// the UNIX socket at `socket` (Cloud Hypervisor's hybrid vsock).
public struct VsockConfig: Sendable, Equatable {
    /// The guest's context id.
    public var cid: UInt32
    /// Where the VMM listens for host clients; a guest connecting to host
    /// port P reaches `<socket>_P`.
    public var socket: String
    public var id: String?
    public var pciSegment: Int
    /// `iommu=on`: behind the virtual IOMMU.
    public var iommu = false

    public init(cid: UInt32, socket: String, id: String? = nil, pciSegment: Int = 0) {
        self.cid = cid
        self.socket = socket
        self.id = id
        self.pciSegment = pciSegment
    }

    static let known = ["cid", "socket", "iommu", "id", "pci_segment", "pci_device_id"]

    /// The longest path a UNIX socket address holds, with "_4294967295"
    /// appended for the guest's connections.
    static let maxSocketPath = 107 - 11

    public init(parsing text: String) throws(ConfigError) {
        let list = try OptionList(text, option: "--vsock", known: Self.known)
        try list.refuseUnsupported(["pci_device_id"])
        guard list["cid"] != nil else { throw .missing(option: "--vsock", what: "cid=… is required (the guest's context id, 3 or more)") }
        let cid = try list.integer("cid", in: UInt32.min...UInt32.max) ?? 0
        // Cloud Hypervisor: "N is a special VSOCK CID" for -1, 0, 1 and 2.
        guard cid > 2, cid != UInt32.max else {
            throw .invalidValue(option: "--vsock", key: "cid", value: String(cid),
                                reason: "a special VSOCK CID (0 hypervisor, 1 loopback, 2 host, 4294967295 any): give 3 or more")
        }
        let socket = try list.required("socket")
        guard socket.utf8.count <= Self.maxSocketPath else {
            throw .invalidValue(option: "--vsock", key: "socket", value: socket,
                                reason: "longer than \(Self.maxSocketPath) bytes: a UNIX socket address holds it with the port appended")
        }
        self.init(cid: cid, socket: socket, id: list["id"], pciSegment: try list.pciSegment())
        iommu = try list.bool("iommu") ?? false
    }
}
