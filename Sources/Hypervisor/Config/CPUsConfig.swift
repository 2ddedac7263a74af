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

    /// `topology=threads_per_core:cores_per_die:dies_per_package:packages`:
    /// the one every VM has is accepted (Kata sends it each time), one
    /// package of `max` single-threaded cores; others are not built.
    private static func checkTopology(_ text: String, max: Int) throws(ConfigError) {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false).map { Int($0) }
        guard parts.count == 4, let t = parts[0], let c = parts[1], let d = parts[2], let p = parts[3],
              t > 0, c > 0, d > 0, p > 0 else {
            throw .invalidValue(option: "--cpus", key: "topology", value: text,
                                reason: "expected threads_per_core:cores_per_die:dies_per_package:packages")
        }
        guard t * c * d * p == max else {
            throw .invalidValue(option: "--cpus", key: "topology", value: text, reason: "makes \(t * c * d * p) vCPUs, not max (\(max))")
        }
        guard t == 1, d == 1, p == 1 else { throw .notSupported("--cpus topology=\(text) (only 1:\(max):1:1)") }
    }

    static let known = ["boot", "max", "topology", "kvm_hyperv", "max_phys_bits", "affinity", "features", "nested"]

    /// Also takes a bare number, `--cpus 4`, as `boot=4`.
    public init(parsing text: String) throws(ConfigError) {
        let text = text.first?.isNumber == true && !text.contains("=") ? "boot=\(text)" : text
        let list = try OptionList(text, option: "--cpus", known: Self.known)
        try list.refuseUnsupported(["max_phys_bits", "affinity", "features"])
        try list.refuseUnsupported(["kvm_hyperv", "nested"], unlessEqualTo: ["kvm_hyperv": "off", "nested": "on"])
        let boot = try list.integer("boot", in: 1...Self.maxVCPUs) ?? 1
        let max = try list.integer("max", in: 1...Self.maxVCPUs) ?? boot
        guard max >= boot else {
            throw .invalidValue(option: "--cpus", key: "max", value: String(max),
                                reason: "max must be at least boot (\(boot))")
        }
        if let topology = list["topology"] { try Self.checkTopology(topology, max: max) }
        self.init(boot: boot, max: max)
    }
}
