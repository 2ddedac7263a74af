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
        switch text {
        case "off": self = .off
        case "null": self = .null
        case "tty": self = .tty
        case "pty": self = .pty
        default:
            guard text.contains("=") else {
                throw .invalidValue(option: option, key: nil, value: text,
                                    reason: "expected off, null, pty, tty, file=PATH or socket=PATH")
            }
            // Cloud Hypervisor's virtio console is a PCI device with its keys; COM1 is not.
            let pciKeys = option == "--console" ? ["id", "pci_segment", "pci_device_id"] : []
            let list = try OptionList(text, option: option, known: ["file", "socket", "iommu"] + pciKeys)
            try list.refuseUnsupported(["iommu", "pci_segment"], unlessEqualTo: ["iommu": "off", "pci_segment": "0"])
            try list.refuseUnsupported(["id", "pci_device_id"])
            if let path = list["file"] {
                guard !path.isEmpty else { throw .missing(option: option, what: "file= needs a path") }
                self = .file(path: path)
            } else if let path = list["socket"] {
                self = .socket(path: path)
            } else {
                throw .invalidValue(option: option, key: nil, value: text,
                                    reason: "expected off, null, pty, tty, file=PATH or socket=PATH")
            }
        }
    }
}
