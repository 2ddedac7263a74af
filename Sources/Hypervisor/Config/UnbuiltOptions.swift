/// Cloud Hypervisor's options whose devices or features this VMM does not
/// have yet. Each is known with its syntax, so a command line written for
/// Cloud Hypervisor is told "not supported yet" (after its keys are
/// checked), never "unknown option".
public struct UnbuiltOption: Sendable {
    public enum Value: Sendable {
        /// A flag: `--watchdog`.
        case none
        /// `key=value,...` with these keys.
        case keys([String])
        /// `--rtc` or `--rtc key=value,...`.
        case optionalKeys([String])
        /// Free text: a path, a format string.
        case text
    }

    public let name: String
    public let value: Value
    /// Several values after one flag, as `--fs a b`.
    public let takesList: Bool

    init(_ name: String, _ value: Value, list: Bool = false) {
        self.name = name
        self.value = value
        takesList = list
    }

    // Key lists are written out whole: a static built with `+` leaves
    // its temporaries to LeakSanitizer's count under the fuzzer.
    public static let all: [UnbuiltOption] = [
        UnbuiltOption("--balloon", .keys(["size", "deflate_on_oom", "free_page_reporting", "iommu", "id", "pci_segment", "pci_device_id"])),
        UnbuiltOption("--event-monitor", .keys(["path", "fd"])),
        UnbuiltOption("--firmware", .text),
        UnbuiltOption("--fw-cfg-config", .keys(["e820", "kernel", "cmdline", "initramfs", "acpi_table", "items"])),
        UnbuiltOption("--gdb", .keys(["path"])),
        UnbuiltOption("--generic-vhost-user", .keys(["device_type", "virtio_id", "socket", "queue_sizes", "id", "pci_segment", "pci_device_id"]), list: true),
        UnbuiltOption("--igvm", .text),
        UnbuiltOption("--host-data", .text),
        UnbuiltOption("--ivshmem", .keys(["path", "size", "id", "pci_segment", "pci_device_id"])),
        UnbuiltOption("--log-format", .text),
        UnbuiltOption("--memory-zone", .keys(["size", "file", "shared", "hugepages", "hugepage_size", "host_numa_node", "id",
                                              "hotplug_size", "hotplugged_size", "prefault", "reserve", "mergeable"]), list: true),
        UnbuiltOption("--no-shutdown", .none),
        UnbuiltOption("--numa", .keys(["guest_numa_id", "cpus", "distances", "device_id", "memory_zones", "pci_segments"]), list: true),
        UnbuiltOption("--pci-segment", .keys(["pci_segment", "mmio32_aperture_weight", "mmio64_aperture_weight"]), list: true),
        UnbuiltOption("--pmem", .keys(["file", "size", "iommu", "discard_writes", "id", "pci_segment", "pci_device_id"]), list: true),
        UnbuiltOption("--pvmemcontrol", .none),
        UnbuiltOption("--rate-limit-group", .keys(["bw_size", "bw_one_time_burst", "bw_refill_time", "ops_size", "ops_one_time_burst", "ops_refill_time", "id"]), list: true),
        UnbuiltOption("--rtc", .optionalKeys(["iommu", "id", "pci_segment", "pci_device_id"])),
        UnbuiltOption("--tpm", .keys(["socket"])),
        UnbuiltOption("--user-device", .keys(["socket", "id", "pci_segment", "pci_device_id"]), list: true),
        UnbuiltOption("--vdpa", .keys(["path", "num_queues", "iommu", "id", "pci_segment", "pci_device_id"]), list: true),
        UnbuiltOption("--watchdog", .none),
        UnbuiltOption("--dbus-object-path", .text),
        UnbuiltOption("--dbus-service-name", .text),
        UnbuiltOption("--dbus-system-bus", .none),
    ]

    /// The refusal for this option given `values` (empty for a flag): a
    /// syntax error if the values are malformed, else "not supported yet".
    public func refusal(values: [String]) -> ConfigError {
        switch value {
        case .none:
            if let stray = values.first {
                return .invalidValue(option: name, key: nil, value: stray, reason: "\(name) takes no value")
            }
        case .text:
            guard let first = values.first, !first.isEmpty else { return .missing(option: name, what: "a value is required") }
        case .keys(let known):
            guard !values.isEmpty else { return .missing(option: name, what: "a value is required (keys: \(known.joined(separator: ", ")))") }
            fallthrough
        case .optionalKeys(let known):
            for text in values {
                do {
                    _ = try OptionList(text, option: name, known: known)
                } catch {
                    return error
                }
            }
        }
        return .notSupported(name)
    }

    /// The first unbuilt option in `arguments` and the values after it, as
    /// the command line groups them (`--x=v` or `--x v1 v2 …`).
    public static func firstRefusal(in arguments: [String]) -> ConfigError? {
        for (index, argument) in arguments.enumerated() {
            let parts = argument.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard let option = all.first(where: { $0.name == parts[0] }) else { continue }
            if parts.count == 2 { return option.refusal(values: [String(parts[1])]) }
            // A flag's stray word is collected too, to be named.
            var values: [String] = []
            for next in arguments[(index + 1)...] {
                if next.hasPrefix("-") && next.count > 1 { break }
                values.append(next)
                if !option.takesList { break }
            }
            return option.refusal(values: values)
        }
        return nil
    }
}
