/// `--cpus boot=N[,max=M]`.
public struct CPUsConfig: Sendable, Equatable {
    /// vCPUs started at boot.
    public var boot: Int
    /// vCPUs the guest may have with hotplug (`vm.resize`).
    public var max: Int

    public static let maxVCPUs = 254

    public init(boot: Int = 1, max: Int? = nil) {
        self.boot = boot
        self.max = max ?? boot
    }

    static let known = ["boot", "max", "topology", "kvm_hyperv", "max_phys_bits", "affinity", "features", "nested"]

    /// Also takes a bare number, `--cpus 4`, as `boot=4`.
    public init(parsing text: String) throws(ConfigError) {
        let text = text.first?.isNumber == true && !text.contains("=") ? "boot=\(text)" : text
        let list = try OptionList(text, option: "--cpus", known: Self.known)
        try list.refuseUnsupported(["topology", "max_phys_bits", "affinity", "features"])
        try list.refuseUnsupported(["kvm_hyperv", "nested"], unlessEqualTo: ["kvm_hyperv": "off", "nested": "on"])
        let boot = try list.integer("boot", in: 1...Self.maxVCPUs) ?? 1
        let max = try list.integer("max", in: 1...Self.maxVCPUs) ?? boot
        guard max >= boot else {
            throw .invalidValue(option: "--cpus", key: "max", value: String(max),
                                reason: "max must be at least boot (\(boot))")
        }
        self.init(boot: boot, max: max)
    }
}
