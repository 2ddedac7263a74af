/// Where a console's bytes go: `--serial` and `--console` both take
/// `off|null|pty|tty|file=PATH|socket=PATH`.
public enum ConsoleConfig: Sendable, Equatable {
    /// No device at all.
    case off
    /// A device whose output is discarded.
    case null
    /// The VMM's standard output.
    case tty
    /// A file, created or truncated.
    case file(path: String)
    case pty
    case socket(path: String)

    public init(parsing text: String, option: String) throws(ConfigError) {
        self = try Self.parse(text, option: option).mode
    }

    /// The mode and the keys after it: `tty`, `tty,pci_segment=1`,
    /// `file=PATH,iommu=off`. The virtio console (`--console`) is a PCI
    /// device and has Cloud Hypervisor's PCI keys; COM1 has none.
    static func parse(_ text: String, option: String) throws(ConfigError) -> (mode: ConsoleConfig, keys: OptionList) {
        let pciKeys = option == "--console" ? ["id", "pci_segment", "pci_device_id"] : []
        func checked(_ list: OptionList) throws(ConfigError) -> OptionList {
            // COM1 is no PCI function: nothing to put behind an IOMMU.
            if option != "--console" { try list.refuseUnsupported(["iommu"], unlessEqualTo: ["iommu": "off"]) }
            try list.refuseUnsupported(["id", "pci_device_id"])
            return list
        }
        let modes: [Substring: ConsoleConfig] = ["off": .off, "null": .null, "tty": .tty, "pty": .pty]
        let head = text.split(separator: ",", maxSplits: 1, omittingEmptySubsequences: false)
        if let mode = modes[head[0]] {
            return (mode, try checked(OptionList(head.count > 1 ? String(head[1]) : "", option: option, known: ["iommu"] + pciKeys)))
        }
        guard text.contains("=") else {
            throw .invalidValue(option: option, key: nil, value: text, reason: "expected off, null, pty, tty, file=PATH or socket=PATH")
        }
        let list = try checked(OptionList(text, option: option, known: ["file", "socket", "iommu"] + pciKeys))
        if let path = list["file"] {
            guard !path.isEmpty else { throw .missing(option: option, what: "file= needs a path") }
            return (.file(path: path), list)
        }
        if let path = list["socket"] { return (.socket(path: path), list) }
        throw .invalidValue(option: option, key: nil, value: text, reason: "expected off, null, pty, tty, file=PATH or socket=PATH")
    }
}

/// `--console`'s value: where hvc0's bytes go, and the PCI segment the
/// virtio console is on.
public struct ConsoleOption: Sendable, Equatable {
    public var mode: ConsoleConfig
    public var pciSegment: Int
    /// `iommu=on`: the virtio console behind the virtual IOMMU.
    public var iommu: Bool

    public init(mode: ConsoleConfig, pciSegment: Int = 0, iommu: Bool = false) {
        self.mode = mode
        self.pciSegment = pciSegment
        self.iommu = iommu
    }

    public init(parsing text: String) throws(ConfigError) {
        let parsed = try ConsoleConfig.parse(text, option: "--console")
        self.init(mode: parsed.mode, pciSegment: try parsed.keys.pciSegment(), iommu: try parsed.keys.bool("iommu") ?? false)
    }
}
