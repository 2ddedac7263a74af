/// `--restore source_url=file:///DIR[,prefault=on][,resume=on]` and the
/// body of `vm.restore`: which snapshot, whether its RAM is faulted in
/// before the guest runs, and whether the restored VM runs at once
/// (Cloud Hypervisor's `resume`; without it the VM waits, paused, for
/// `vm.resume`).
public struct RestoreConfig: Sendable, Equatable {
    public var sourceURL: String
    public var prefault: Bool
    public var resume: Bool

    public init(sourceURL: String, prefault: Bool = false, resume: Bool = false) {
        self.sourceURL = sourceURL
        self.prefault = prefault
        self.resume = resume
    }

    static let known = ["source_url", "prefault", "memory_restore_mode", "net_fds", "vfio_fds", "iommufd_fd", "resume", "zone_updates"]

    public init(parsing text: String) throws(ConfigError) {
        let list = try OptionList(text, option: "--restore", known: Self.known)
        try list.refuseUnsupported(["net_fds", "vfio_fds", "iommufd_fd", "zone_updates"])
        try list.refuseUnsupported(["memory_restore_mode"], unlessEqualTo: ["memory_restore_mode": "copy"])
        self.init(sourceURL: try list.required("source_url"), prefault: try list.bool("prefault") ?? false,
                  resume: try list.bool("resume") ?? false)
    }
}
