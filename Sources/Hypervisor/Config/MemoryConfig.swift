/// `--memory size=512M[,shared=on,prefault=on,mergeable=on,thp=off]`.
public struct MemoryConfig: Sendable, Equatable {
    /// Guest RAM in bytes.
    public var sizeBytes: UInt64
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

    public init(sizeBytes: UInt64 = defaultSizeBytes, shared: Bool = false, prefault: Bool = false,
                mergeable: Bool = false, thp: Bool = true) {
        self.sizeBytes = sizeBytes
        self.shared = shared
        self.prefault = prefault
        self.mergeable = mergeable
        self.thp = thp
    }

    static let known = ["size", "mergeable", "shared", "hugepages", "hugepage_size", "hotplug_method",
                        "hotplug_size", "hotplugged_size", "prefault", "thp"]

    public init(parsing text: String) throws(ConfigError) {
        let list = try OptionList(text, option: "--memory", known: Self.known)
        try list.refuseUnsupported(["hugepage_size", "hotplug_size", "hotplugged_size"])
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
                  thp: try list.bool("thp") ?? true)
    }
}
