/// The device options whose parsers exist so that their syntax is checked
/// like Cloud Hypervisor's; `VMConfig.validate()` refuses them until the
/// devices behind them (virtio over PCI, VFIO) exist.

/// `--disk path=…[,readonly=on,id=…]`.
public struct DiskConfig: Sendable, Equatable {
    public var path: String
    public var readonly: Bool
    public var id: String?

    static let known = ["path", "readonly", "direct", "iommu", "num_queues", "queue_size", "vhost_user",
                        "socket", "bw_size", "bw_one_time_burst", "bw_refill_time", "ops_size",
                        "ops_one_time_burst", "ops_refill_time", "id", "pci_segment", "rate_limit_group",
                        "queue_affinity", "serial", "backing_files", "sparse", "image_type"]

    public init(parsing text: String) throws(ConfigError) {
        let list = try OptionList(text, option: "--disk", known: Self.known)
        path = try list.required("path")
        readonly = try list.bool("readonly") ?? false
        id = list["id"]
    }
}

/// `--device path=/sys/bus/pci/devices/…[,id=…]`: a host PCI device for VFIO.
public struct DeviceConfig: Sendable, Equatable {
    public var path: String
    public var id: String?

    static let known = ["path", "iommu", "id", "pci_segment"]

    public init(parsing text: String) throws(ConfigError) {
        let list = try OptionList(text, option: "--device", known: Self.known)
        path = try list.required("path")
        id = list["id"]
    }
}

/// `--net tap=…,mac=…,…`.
public struct NetConfig: Sendable, Equatable {
    public var tap: String?
    public var mac: String?

    static let known = ["tap", "ip", "mask", "mac", "host_mac", "fd", "iommu", "num_queues", "queue_size",
                        "id", "vhost_user", "socket", "vhost_mode", "bw_size", "bw_one_time_burst",
                        "bw_refill_time", "ops_size", "ops_one_time_burst", "ops_refill_time",
                        "pci_segment", "offload_tso", "offload_ufo", "offload_csum", "mtu"]

    public init(parsing text: String) throws(ConfigError) {
        let list = try OptionList(text, option: "--net", known: Self.known)
        tap = list["tap"]
        mac = list["mac"]
    }
}

/// `--rng src=/dev/urandom`.
public struct RngConfig: Sendable, Equatable {
    public var source: String

    public init(parsing text: String) throws(ConfigError) {
        let list = try OptionList(text, option: "--rng", known: ["src", "iommu"])
        source = list["src"] ?? "/dev/urandom"
    }
}
