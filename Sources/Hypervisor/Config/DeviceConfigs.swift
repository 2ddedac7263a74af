import CVMMCore

/// The device options. Keys Cloud Hypervisor has that are not built yet
/// are refused as "not supported yet"; `VMConfig.validate()` refuses the
/// options whose devices do not exist yet (VFIO, virtio-net).

/// `--disk path=…[,readonly=on,id=…,serial=…,num_queues=N,queue_size=N,image_type=raw]`,
/// or `--disk vhost_user=on,socket=…[,num_queues=N,queue_size=N,id=…]`.
public struct DiskConfig: Sendable, Equatable {
    /// A raw image file or block device; empty for a vhost-user disk.
    public var path: String
    /// `vhost_user=on,socket=…`: a vhost-user-blk backend serves the disk.
    public var vhostSocket: String?
    /// The guest sees a read-only disk; the image is opened read-only.
    public var readonly: Bool
    public var id: String?
    /// What the guest reads as the disk's serial (GET_ID), 20 bytes at most.
    public var serial: String?
    /// Request queues (multiqueue with more than one).
    public var numQueues: Int
    /// Entries per queue: a power of two.
    public var queueSize: Int
    /// `lock_granularity=full`: the image's lock covers the whole file
    /// rather than its bytes [0, size) (`byte-range`, Cloud Hypervisor's
    /// default, which lets NFS servers snapshot the file under it).
    public var lockWholeFile: Bool
    /// The PCI segment its function goes on (`--platform num_pci_segments`).
    public var pciSegment: Int
    /// `iommu=on`: behind the virtual IOMMU.
    public var iommu = false

    public static let defaultQueueSize = 128

    public init(path: String, readonly: Bool = false, id: String? = nil, serial: String? = nil,
                numQueues: Int = 1, queueSize: Int = defaultQueueSize, lockWholeFile: Bool = false, pciSegment: Int = 0,
                vhostSocket: String? = nil) {
        self.path = path
        self.vhostSocket = vhostSocket
        self.readonly = readonly
        self.id = id
        self.serial = serial
        self.numQueues = numQueues
        self.queueSize = queueSize
        self.lockWholeFile = lockWholeFile
        self.pciSegment = pciSegment
    }

    static let known = ["path", "readonly", "direct", "iommu", "num_queues", "queue_size", "vhost_user",
                        "socket", "bw_size", "bw_one_time_burst", "bw_refill_time", "ops_size",
                        "ops_one_time_burst", "ops_refill_time", "id", "pci_segment", "rate_limit_group",
                        "queue_affinity", "serial", "backing_files", "sparse", "image_type", "lock_granularity"]

    public init(parsing text: String) throws(ConfigError) {
        let list = try OptionList(text, option: "--disk", known: Self.known)
        try list.refuseUnsupported(["bw_size", "bw_one_time_burst", "bw_refill_time", "ops_size",
                                    "ops_one_time_burst", "ops_refill_time", "rate_limit_group", "queue_affinity"])
        try list.refuseUnsupported(["direct", "backing_files", "sparse"],
                                   unlessEqualTo: ["direct": "off", "backing_files": "off", "sparse": "on"])
        let vhostUser = try list.bool("vhost_user") ?? false
        let iommu = try list.bool("iommu") ?? false
        if vhostUser {
            // Cloud Hypervisor: "Device does not support being placed behind IOMMU".
            if iommu { throw .conflict("--disk vhost_user=on: a vhost-user backend reads guest RAM by guest addresses and cannot be placed behind the IOMMU: drop iommu=on") }
            // What the backend decides (qemu-storage-daemon's writable=, its image) is not the VMM's to set.
            let defaults = ["readonly": ["off", "false"], "image_type": ["raw"], "lock_granularity": ["byte-range"]]
            for key in ["path", "readonly", "serial", "image_type", "lock_granularity"]
            where list[key].map({ !(defaults[key] ?? []).contains($0) }) == true {
                throw .conflict("--disk: \(key)= is the vhost-user backend's to decide: give vhost_user=on with socket= (and num_queues, queue_size, id, pci_segment)")
            }
        } else if list["socket"] != nil {
            throw .conflict("--disk: socket= names a vhost-user backend: give vhost_user=on too")
        }
        if let type = list["image_type"], type != "raw" {
            guard ["qcow2", "vhd", "vhdx", "fixed_vhd"].contains(type) else {
                throw .invalidValue(option: "--disk", key: "image_type", value: type,
                                    reason: "expected raw, qcow2, vhd or vhdx")
            }
            throw .notSupported("--disk image_type=\(type) (only raw images for now)")
        }
        let serial = list["serial"]
        if let serial, serial.utf8.count > 20 {
            throw .invalidValue(option: "--disk", key: "serial", value: serial, reason: "at most 20 bytes")
        }
        let queueSize = try list.integer("queue_size", in: 2...Int(VMM_VIRTQ_MAX_SIZE)) ?? Self.defaultQueueSize
        guard queueSize & (queueSize - 1) == 0 else {
            throw .invalidValue(option: "--disk", key: "queue_size", value: String(queueSize), reason: "must be a power of two")
        }
        let granularity = list["lock_granularity"] ?? "byte-range"
        guard granularity == "byte-range" || granularity == "full" else {
            throw .invalidValue(option: "--disk", key: "lock_granularity", value: granularity, reason: "expected byte-range or full")
        }
        self.init(path: vhostUser ? "" : try list.required("path"), readonly: try list.bool("readonly") ?? false, id: list["id"],
                  serial: serial, numQueues: try list.integer("num_queues", in: 1...64) ?? 1, queueSize: queueSize,
                  lockWholeFile: granularity == "full", pciSegment: try list.pciSegment(),
                  vhostSocket: vhostUser ? try list.required("socket") : nil)
        self.iommu = iommu
    }
}

/// `--device path=/sys/bus/pci/devices/BDF/[,id=…]`: a host PCI device for VFIO.
public struct DeviceConfig: Sendable, Equatable {
    /// As given, for messages.
    public var path: String
    /// The device's address, `0000:01:00.0`.
    public var bdf: String
    public var id: String?
    /// `bind=auto` (not in Cloud Hypervisor): the VMM moves the device to
    /// vfio-pci itself and gives it back to its driver when it ends.
    public var managedBinding: Bool
    /// The PCI segment the guest finds it on.
    public var pciSegment: Int
    /// `iommu=on`: behind the virtual IOMMU, in a VFIO container of its
    /// own whose DMA mappings are the guest's.
    public var iommu = false

    static let known = ["path", "iommu", "id", "pci_segment", "x_nv_gpudirect_clique", "bind"]

    public init(parsing text: String) throws(ConfigError) {
        let list = try OptionList(text, option: "--device", known: Self.known)
        try list.refuseUnsupported(["x_nv_gpudirect_clique"])
        switch list["bind"] {
        case nil, "manual": managedBinding = false
        case "auto": managedBinding = true
        case let other?:
            throw .invalidValue(option: "--device", key: "bind", value: other,
                                reason: "expected auto (the VMM binds vfio-pci and restores the driver) or manual")
        }
        iommu = try list.bool("iommu") ?? false
        let path = try list.required("path")
        guard let bdf = Self.address(of: path) else {
            throw .invalidValue(option: "--device", key: "path", value: path,
                                reason: "expected /sys/bus/pci/devices/DDDD:BB:SS.F/ or a PCI address such as 0000:01:00.0")
        }
        self.path = path
        self.bdf = bdf
        id = list["id"]
        pciSegment = try list.pciSegment()
    }

    /// The PCI address in a sysfs path (trailing slash or not) or a bare
    /// address; the domain defaults to 0000.
    static func address(of path: String) -> String? {
        var name = Substring(path)
        while name.hasSuffix("/") { name = name.dropLast() }
        if name.contains("/") {
            guard name.hasPrefix("/sys/bus/pci/devices/") || name.hasPrefix("/sys/devices/") else { return nil }
            name = name.split(separator: "/").last ?? ""
        }
        let parts = name.split(separator: ":", omittingEmptySubsequences: false)
        let full = parts.count == 2 ? ["0000"] + parts : parts
        guard full.count == 3, full[0].count == 4, full[1].count == 2 else { return nil }
        let slotFunction = full[2].split(separator: ".", omittingEmptySubsequences: false)
        guard slotFunction.count == 2, slotFunction[0].count == 2, slotFunction[1].count == 1,
              let slot = UInt8(slotFunction[0], radix: 16), slot < 32, let function = UInt8(slotFunction[1], radix: 16), function < 8,
              UInt16(full[0], radix: 16) != nil, UInt8(full[1], radix: 16) != nil else { return nil }
        return "\(full[0]):\(full[1]):\(slotFunction[0]).\(slotFunction[1])".lowercased()
    }
}

/// `--rng src=/dev/urandom[,pci_segment=N]`: the virtio-rng device, which every VM has.
public struct RngConfig: Sendable, Equatable {
    public static let defaultSource = "/dev/urandom"
    /// Where entropy comes from.
    public var source: String
    public var pciSegment: Int
    /// `iommu=on`: behind the virtual IOMMU.
    public var iommu: Bool

    public init(source: String = defaultSource, pciSegment: Int = 0, iommu: Bool = false) {
        self.source = source
        self.pciSegment = pciSegment
        self.iommu = iommu
    }

    static let known = ["src", "iommu", "id", "pci_segment", "pci_device_id"]

    public init(parsing text: String) throws(ConfigError) {
        let list = try OptionList(text, option: "--rng", known: Self.known)
        try list.refuseUnsupported(["id", "pci_device_id"])
        let source = list["src"] ?? Self.defaultSource
        guard !source.isEmpty else { throw .missing(option: "--rng", what: "src= needs a path") }
        self.init(source: source, pciSegment: try list.pciSegment(), iommu: try list.bool("iommu") ?? false)
    }
}
