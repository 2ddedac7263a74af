/// `--restore source_url=file:///DIR[,prefault=on][,resume=on]` and the
/// body of `vm.restore`: which snapshot, whether its RAM is faulted in
/// before the guest runs, and whether the restored VM runs at once
/// (Cloud Hypervisor's `resume`; without it the VM waits, paused, for
/// `vm.resume`).
public struct RestoreConfig: Sendable, Equatable {
    public var sourceURL: String
    public var prefault: Bool
    public var resume: Bool
    /// `net_fds=[net0@[23,24]]`: taps the caller opened for the snapshot's
    /// nets, by id, one per queue pair, instead of opening them by name.
    public var netFDs: [RestoredNet]

    public struct RestoredNet: Sendable, Equatable {
        public var id: String
        public var fds: [Int32]
        public init(id: String, fds: [Int32]) {
            self.id = id
            self.fds = fds
        }
    }

    public init(sourceURL: String, prefault: Bool = false, resume: Bool = false, netFDs: [RestoredNet] = []) {
        self.sourceURL = sourceURL
        self.prefault = prefault
        self.resume = resume
        self.netFDs = netFDs
    }

    static let known = ["source_url", "prefault", "memory_restore_mode", "net_fds", "vfio_fds", "iommufd_fd", "resume", "zone_updates"]

    public init(parsing text: String) throws(ConfigError) {
        let list = try OptionList(text, option: "--restore", known: Self.known)
        try list.refuseUnsupported(["vfio_fds", "iommufd_fd", "zone_updates"])
        try list.refuseUnsupported(["memory_restore_mode"], unlessEqualTo: ["memory_restore_mode": "copy"])
        self.init(sourceURL: try list.required("source_url"), prefault: try list.bool("prefault") ?? false,
                  resume: try list.bool("resume") ?? false, netFDs: try list["net_fds"].map(Self.netFDs) ?? [])
    }

    /// `[net0@[23,24],net1@[25]]`, Cloud Hypervisor's form.
    static func netFDs(_ text: String) throws(ConfigError) -> [RestoredNet] {
        func refuse(_ reason: String) -> ConfigError {
            .invalidValue(option: "--restore", key: "net_fds", value: text, reason: reason)
        }
        guard text.hasPrefix("["), text.hasSuffix("]") else { throw refuse("expected a list such as [net0@[23,24]]") }
        var nets: [RestoredNet] = []
        for item in OptionList.split(String(text.dropFirst().dropLast())) where !item.isEmpty {
            guard let at = item.firstIndex(of: "@"), !item[..<at].isEmpty,
                  let fds = NetConfig.fdList(String(item[item.index(after: at)...])) else {
                throw refuse("expected id@[descriptors] for each net, such as net0@[23,24]")
            }
            if let low = fds.first(where: { $0 <= 2 }) { throw refuse("descriptor \(low) is standard input, output or error, not a tap") }
            nets.append(RestoredNet(id: String(item[..<at]), fds: fds))
        }
        guard Set(nets.map(\.id)).count == nets.count else { throw refuse("a net is named twice") }
        guard Set(nets.flatMap(\.fds)).count == nets.flatMap(\.fds).count else { throw refuse("a descriptor is given twice") }
        return nets
    }
}
