/// `--memory size=512M[,shared=on,prefault=on,mergeable=on,thp=off,hotplug_size=…]`.
public struct MemoryConfig: Sendable, Equatable {
    /// Guest RAM in bytes (after `vm.resize`, what the next boot has).
    public var sizeBytes: UInt64
    /// Guest-physical room above RAM that `vm.resize` may fill (ACPI memory hotplug).
    public var hotplugBytes: UInt64
    /// Map RAM shared (needed by vhost-user backends) instead of private.
    public var shared: Bool
    /// Populate every page at start instead of on first touch.
    public var prefault: Bool
    /// Offer the RAM to KSM.
    public var mergeable: Bool
    /// Ask for transparent huge pages.
    public var thp: Bool

    public static let defaultSizeBytes: UInt64 = 512 << 20
    static let pageSize: UInt64 = 4096

    /// What one hot-added range must be a multiple of: Linux's memory block on x86_64.
    public static let hotplugGranule: UInt64 = 128 << 20

    public init(sizeBytes: UInt64 = defaultSizeBytes, shared: Bool = false, prefault: Bool = false,
                mergeable: Bool = false, thp: Bool = true, hotplugBytes: UInt64 = 0) {
        self.sizeBytes = sizeBytes
        self.hotplugBytes = hotplugBytes
        self.shared = shared
        self.prefault = prefault
        self.mergeable = mergeable
        self.thp = thp
    }

    /// At most 16T: past that no host's physical addresses reach.
    private static func hotplugSize(_ list: OptionList) throws(ConfigError) -> UInt64 {
        let size = try list.size("hotplug_size") ?? 0
        guard size <= 16 << 40 else {
            throw .invalidValue(option: "--memory", key: "hotplug_size", value: list["hotplug_size"] ?? "", reason: "at most 16384G")
        }
        return size
    }

    static let known = ["size", "mergeable", "shared", "hugepages", "hugepage_size", "hotplug_method",
                        "hotplug_size", "hotplugged_size", "prefault", "thp"]

    public init(parsing text: String) throws(ConfigError) {
        let list = try OptionList(text, option: "--memory", known: Self.known)
        try list.refuseUnsupported(["hugepage_size", "hotplugged_size"], unlessEqualTo: ["hotplugged_size": "0"])
        try list.refuseUnsupported(["hugepages", "hotplug_method"],
                                   unlessEqualTo: ["hugepages": "off", "hotplug_method": "acpi"])
        let size = try list.size("size") ?? Self.defaultSizeBytes
        guard size >= 1 << 20 else {
            throw .invalidValue(option: "--memory", key: "size", value: list["size"] ?? "",
                                reason: "a guest needs at least 1M")
        }
        guard size % Self.pageSize == 0 else {
            throw .invalidValue(option: "--memory", key: "size", value: list["size"] ?? "",
                                reason: "must be a multiple of 4K")
        }
        self.init(sizeBytes: size,
                  shared: try list.bool("shared") ?? false,
                  prefault: try list.bool("prefault") ?? false,
                  mergeable: try list.bool("mergeable") ?? false,
                  thp: try list.bool("thp") ?? true,
                  hotplugBytes: try Self.hotplugSize(list))
    }
}
