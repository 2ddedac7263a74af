/// Cloud Hypervisor's `VmConfig` (the body of `vm.create`) to a `VMConfig`,
/// and back for `vm.info`. Each device object goes through the command
/// line's parser as `key=value` text, so an error reads the same from both;
/// fields this VMM does not know are ignored, as Cloud Hypervisor ignores
/// them, and fields for what is not built yet are refused unless they hold
/// a default.
public enum VmConfigJSON {
    /// Sections whose devices do not exist yet: refused unless empty.
    static let unbuiltSections = ["balloon", "generic_vhost_user", "pmem", "user_devices", "vdpa",
                                  "numa", "rtc", "tpm", "rate_limit_groups", "pci_segments", "watchdog",
                                  "sgx_epc", "preserved_fds"]

    /// `base` carries what only the command line sets (seccomp, user, log).
    public static func config(from body: [UInt8], base: VMConfig) throws(ConfigError) -> VMConfig {
        guard case .object(let root)? = try? JSONReader.parse(body) else {
            throw .invalidValue(option: "vm.create", key: nil, value: "body", reason: "not a JSON object (a VmConfig)")
        }
        if JSONValue.object(root).containsNUL { throw nulRefused("vm.create") }
        var config = base
        for section in unbuiltSections {
            if let value = root[section], !value.isDefaultLike { throw .notSupported("VmConfig \(section)") }
        }
        guard case .object(let payload)? = root["payload"] else {
            throw .missing(option: "VmConfig", what: "payload is required (payload.kernel at least)")
        }
        for key in ["firmware", "igvm", "host_data"] where payload[key].map({ !$0.isDefaultLike }) == true {
            throw .notSupported("VmConfig payload.\(key)")
        }
        config.kernelPath = try string(payload["kernel"], "payload.kernel")
        config.initramfsPath = try string(payload["initramfs"], "payload.initramfs")
        config.cmdline = try string(payload["cmdline"], "payload.cmdline") ?? ""

        if var cpus = try object(root["cpus"], "cpus") {
            // {threads_per_core, cores_per_die, dies_per_package, packages}: the command line's t:c:d:p.
            if case .object(let topology)? = cpus["topology"] {
                let parts = ["threads_per_core", "cores_per_die", "dies_per_package", "packages"].map { topology[$0]?.optionText ?? "1" }
                cpus["topology"] = .string(parts.joined(separator: ":"))
            }
            config.cpus = try CPUsConfig(parsing: optionText(cpus, renaming: ["boot_vcpus": "boot", "max_vcpus": "max"],
                                                             known: CPUsConfig.known, defaults: ["nested": .bool(true)]))
        }
        if let memory = try object(root["memory"], "memory") {
            var fields = memory
            if case .string(let method)? = fields["hotplug_method"] { fields["hotplug_method"] = .string(method.lowercased()) }
            fields["zones"] = nil
            if let zones = memory["zones"], !zones.isDefaultLike { throw .notSupported("VmConfig memory.zones") }
            config.memory = try MemoryConfig(parsing: optionText(fields, known: MemoryConfig.known,
                                                                 defaults: ["reserve": .bool(false)]))
        }
        config.disks = try list(root["disks"], "disks").map { (disk) throws(ConfigError) in try diskConfig(disk) }
        config.nets = try list(root["net"], "net").map { (net) throws(ConfigError) in try netConfig(net) }
        if let rng = try object(root["rng"], "rng") {
            config.rng = try RngConfig(parsing: optionText(rng, known: RngConfig.known,
                                                           defaults: ["id": .null, "pci_device_id": .null]))
        }
        config.serial = try console(root["serial"], "serial", default: .null)
        config.console = try console(root["console"], "console", default: .tty)
        if case .object(let fields)? = root["console"] {
            for key in ["id", "pci_device_id"] where !(fields[key]?.isDefaultLike ?? true) { throw .notSupported("VmConfig console.\(key)") }
            config.consolePCISegment = try OptionList(fields["pci_segment"]?.optionText.map { "pci_segment=\($0)" } ?? "",
                                                      option: "--console", known: ["pci_segment"]).pciSegment()
            config.consoleIOMMU = fields["iommu"] == .bool(true)
        }
        switch root["iommu"] {
        case nil, .null?: break
        case .bool(let on)?: config.iommu = on
        case let other?: throw .invalidValue(option: "VmConfig", key: "iommu", value: other.optionText ?? "", reason: "expected true or false")
        }
        if let debug = try object(root["debug_console"], "debug_console"), let mode = debug["mode"], mode != .string("Off") {
            throw .notSupported("VmConfig debug_console mode \(mode.optionText ?? "")")
        }
        config.devices = try list(root["devices"], "devices").map { (device) throws(ConfigError) in try deviceConfig(device) }
        config.fs = try list(root["fs"], "fs").map { (share) throws(ConfigError) in try fsConfig(share) }
        config.vsock = try object(root["vsock"], "vsock").map { (vsock) throws(ConfigError) in try vsockConfig(vsock) }
        if let platform = try object(root["platform"], "platform") {
            config.platform = try PlatformConfig(parsing: optionText(platform, renaming: ["iommu_address_width_bits": "iommu_address_width"],
                                                                     known: PlatformConfig.known))
        }
        if case .bool(true)? = root["landlock_enable"] { config.landlock = true }
        config.landlockRules = try list(root["landlock_rules"], "landlock_rules").map { (rule) throws(ConfigError) in
            try LandlockRule(parsing: optionText(rule, known: ["path", "access"]))
        }
        if case .bool(true)? = root["pvpanic"] {} // every VM has one
        try config.validate()
        return config
    }

    static func diskConfig(_ fields: [String: JSONValue]) throws(ConfigError) -> DiskConfig {
        var fields = fields
        // The schema's ImageType (Raw, Qcow2, Vhdx, FixedVhd, or Unknown: find out) in the command line's words.
        if case .string(let type)? = fields["image_type"] {
            let names = ["Raw": "raw", "Qcow2": "qcow2", "Vhdx": "vhdx", "FixedVhd": "fixed_vhd", "Vhd": "vhd"]
            fields["image_type"] = type == "Unknown" ? nil : .string(names[type] ?? type)
        }
        if case .string(let granularity)? = fields["lock_granularity"] {
            fields["lock_granularity"] = .string(["ByteRange": "byte-range", "Full": "full"][granularity] ?? granularity)
        }
        return try DiskConfig(parsing: optionText(fields, renaming: ["vhost_socket": "socket"], known: DiskConfig.known,
                                           defaults: ["rate_limiter_config": .null, "pci_device_id": .null]))
    }

    static func fsConfig(_ fields: [String: JSONValue]) throws(ConfigError) -> FsConfig {
        try FsConfig(parsing: optionText(fields, known: FsConfig.known, defaults: ["pci_device_id": .null]))
    }

    static func vsockConfig(_ fields: [String: JSONValue]) throws(ConfigError) -> VsockConfig {
        try VsockConfig(parsing: optionText(fields, known: VsockConfig.known, defaults: ["pci_device_id": .null]))
    }

    /// Cloud Hypervisor's RestoreConfig: `memory_restore_mode` "Copy" is
    /// what this VMM does; its other values and `net_fds` are not built yet.
    /// `net_fds`: `[{"id","num_fds"}]`, its taps the descriptors the request
    /// carried (SCM_RIGHTS), in order, as Cloud Hypervisor's client sends them.
    static func restoreConfig(_ fields: [String: JSONValue], fds: [Int32] = []) throws(ConfigError) -> RestoreConfig {
        var fields = fields
        if fields["memory_restore_mode"] == .string("Copy") { fields["memory_restore_mode"] = nil }
        var nets: [RestoreConfig.RestoredNet] = []
        if case .array(let entries)? = fields["net_fds"] {
            var next = 0
            for entry in entries {
                guard case .object(let net) = entry, case .string(let id)? = net["id"], case .integer(let count)? = net["num_fds"],
                      count > 0, next + Int(count) <= fds.count else {
                    throw .invalidValue(option: "vm.restore", key: "net_fds", value: entry.optionText ?? "",
                                        reason: "expected {\"id\": …, \"num_fds\": N} for each net, with that many descriptors sent with the request")
                }
                nets.append(.init(id: id, fds: Array(fds[next..<next + Int(count)])))
                next += Int(count)
            }
        }
        fields["net_fds"] = nil
        var config = try RestoreConfig(parsing: optionText(fields, known: RestoreConfig.known))
        config.netFDs = nets
        return config
    }

    static func deviceConfig(_ fields: [String: JSONValue]) throws(ConfigError) -> DeviceConfig {
        try DeviceConfig(parsing: optionText(fields, known: DeviceConfig.known,
                                             defaults: ["pci_device_id": .null, "x_exclude_mmap_bars": .bool(false)]))
    }

    /// A NetConfig. Its taps are `fds`, the descriptors the request carried
    /// (SCM_RIGHTS); numbers in the body are ignored, as Cloud Hypervisor
    /// ignores them: they would name the VMM's own descriptors.
    static func netConfig(_ fields: [String: JSONValue], fds: [Int32] = []) throws(ConfigError) -> NetConfig {
        var fields = fields
        fields["fds"] = nil
        if !fds.isEmpty {
            fields["fd"] = .array(fds.map { .integer(Int64($0)) })
            // Cloud Hypervisor serializes its default address with every
            // net; a tap handed over keeps its own.
            if fields["ip"] == .string("192.168.249.1") { fields["ip"] = nil }
            if fields["mask"] == .string("255.255.255.0") { fields["mask"] = nil }
        }
        if case .string(let mode)? = fields["vhost_mode"], mode == "Client" { fields["vhost_mode"] = nil }
        return try NetConfig(parsing: optionText(fields, renaming: ["vhost_socket": "socket"], known: NetConfig.known,
                                                 defaults: ["rate_limiter_config": .null, "pci_device_id": .null]))
    }

    /// `{"path": "/a", "readonly": true}` → `path=/a,readonly=on`: known keys
    /// only, nulls left out, values with commas quoted.
    static func optionText(_ fields: [String: JSONValue], renaming: [String: String] = [:], known: [String],
                           defaults: [String: JSONValue] = [:]) throws(ConfigError) -> String {
        var items: [String] = []
        for (name, value) in fields.sorted(by: { $0.key < $1.key }) {
            let key = renaming[name] ?? name
            guard known.contains(key) else {
                // Not a key the command line has: fine while it holds its default.
                if let expected = defaults[name], expected == value || value == .null { continue }
                if defaults[name] == nil, !knownElsewhere(name) { continue }
                if value.isDefaultLike { continue }
                throw .notSupported("VmConfig \(name)=\(value.optionText ?? "")")
            }
            if let expected = defaults[name], expected == value { continue }
            guard var text = value.optionText else { continue }
            if text.contains(",") && !text.hasPrefix("[") { text = "\"\(text)\"" }
            items.append("\(key)=\(text)")
        }
        return items.joined(separator: ",")
    }

    /// Fields of Cloud Hypervisor's schema that have no command-line key
    /// here; they are refused unless default. Anything else is ignored.
    private static func knownElsewhere(_ name: String) -> Bool {
        ["rate_limiter_config", "pci_device_id", "reserve", "x_exclude_mmap_bars"].contains(name)
    }

    private static func string(_ value: JSONValue?, _ name: String) throws(ConfigError) -> String? {
        switch value {
        case nil, .null?: return nil
        case .string(let text)?: return text
        default: throw .invalidValue(option: "VmConfig", key: name, value: value?.optionText ?? "", reason: "expected a string")
        }
    }

    /// A request body that must be one JSON object.
    static func object(_ body: [UInt8], _ endpoint: String) throws(ConfigError) -> [String: JSONValue] {
        guard case .object(let fields)? = try? JSONReader.parse(body) else {
            throw .invalidValue(option: endpoint, key: nil, value: "body", reason: "not a JSON object")
        }
        if JSONValue.object(fields).containsNUL { throw nulRefused(endpoint) }
        return fields
    }

    private static func nulRefused(_ endpoint: String) -> ConfigError {
        .invalidValue(option: endpoint, key: nil, value: "body", reason: "a string holds a NUL character (\\u0000), which no path or name may")
    }

    /// A positive count, or nil when absent.
    static func count(_ value: JSONValue?, _ name: String) throws(ConfigError) -> Int? {
        switch value {
        case nil, .null?: return nil
        case .integer(let n)? where n > 0: return Int(n)
        default: throw .invalidValue(option: "vm.resize", key: name, value: value?.optionText ?? "", reason: "expected a positive number")
        }
    }

    private static func object(_ value: JSONValue?, _ name: String) throws(ConfigError) -> [String: JSONValue]? {
        switch value {
        case nil, .null?: return nil
        case .object(let fields)?: return fields
        default: throw .invalidValue(option: "VmConfig", key: name, value: value?.optionText ?? "", reason: "expected an object")
        }
    }

    private static func list(_ value: JSONValue?, _ name: String) throws(ConfigError) -> [[String: JSONValue]] {
        switch value {
        case nil, .null?: return []
        case .array(let items)?:
            return try items.map { (item) throws(ConfigError) in
                guard case .object(let fields) = item else {
                    throw .invalidValue(option: "VmConfig", key: name, value: item.optionText ?? "", reason: "expected a list of objects")
                }
                return fields
            }
        default: throw .invalidValue(option: "VmConfig", key: name, value: value?.optionText ?? "", reason: "expected a list")
        }
    }

    /// `{"mode": "File", "file": "/tmp/log"}` → a ConsoleConfig.
    private static func console(_ value: JSONValue?, _ name: String, default fallback: ConsoleConfig) throws(ConfigError) -> ConsoleConfig {
        guard let fields = try object(value, name) else { return fallback }
        let option = "--\(name)"
        // As --serial iommu=on is: COM1 is no PCI function.
        if name == "serial", case .bool(true)? = fields["iommu"] {
            throw .invalidValue(option: "VmConfig", key: "serial.iommu", value: "true", reason: "the serial port is no PCI device: only the virtio console can be behind the IOMMU")
        }
        switch fields["mode"] {
        case .string("Off")?: return .off
        case .string("Null")?: return .null
        case .string("Tty")?: return .tty
        case .string("Pty")?: return .pty
        case .string("File")?:
            return try ConsoleConfig(parsing: "file=\(try string(fields["file"], "\(name).file") ?? "")", option: option)
        case .string("Socket")?:
            return try ConsoleConfig(parsing: "socket=\(try string(fields["socket"], "\(name).socket") ?? "")", option: option)
        default:
            throw .invalidValue(option: "VmConfig", key: "\(name).mode", value: fields["mode"]?.optionText ?? "",
                                reason: "expected Off, Null, Tty, Pty, File or Socket")
        }
    }
}

extension VmConfigJSON {
    /// A `VMConfig` in Cloud Hypervisor's `VmConfig` shape, for `vm.info`.
    public static func json(_ config: VMConfig) -> JSONValue {
        func text(_ value: String?) -> JSONValue { value.map { .string($0) } ?? .null }
        func int(_ value: some BinaryInteger) -> JSONValue { .integer(Int64(value)) }
        /// `pciSegment`: the virtio console's (COM1 has none).
        func console(_ mode: ConsoleConfig, pciSegment: Int? = nil, pty: String? = nil) -> JSONValue {
            var fields: [String: JSONValue] = switch mode {
            case .off: ["mode": .string("Off")]
            case .null: ["mode": .string("Null")]
            case .tty: ["mode": .string("Tty")]
            case .pty: ["mode": .string("Pty"), "file": text(pty)]
            case .file(let path): ["mode": .string("File"), "file": .string(path)]
            case .socket(let path): ["mode": .string("Socket"), "socket": .string(path)]
            }
            if let pciSegment {
                fields["pci_segment"] = int(pciSegment)
                fields["iommu"] = .bool(config.consoleIOMMU)
            }
            return .object(fields)
        }
        let disks: [JSONValue] = config.disks.map { disk in
            .object(["path": disk.vhostSocket == nil ? .string(disk.path) : .null, "readonly": .bool(disk.readonly), "id": text(disk.id),
                     "serial": text(disk.serial), "num_queues": int(disk.numQueues), "queue_size": int(disk.queueSize),
                     "direct": .bool(false), "iommu": .bool(disk.iommu), "vhost_user": .bool(disk.vhostSocket != nil),
                     "vhost_socket": text(disk.vhostSocket), "pci_segment": int(disk.pciSegment),
                     "image_type": .string("Raw"), "lock_granularity": .string(disk.lockWholeFile ? "Full" : "ByteRange")])
        }
        let nets: [JSONValue] = config.nets.map { net in
            .object(["tap": text(net.tap), "ip": text(net.ip?.description), "mask": text(net.mask?.description),
                     "mac": text(net.mac?.description), "host_mac": text(net.hostMAC?.description),
                     "mtu": net.mtu.map(int) ?? .null, "num_queues": int(net.numQueues), "queue_size": int(net.queueSize),
                     "id": text(net.id), "fds": net.fds.isEmpty ? .null : .array(net.fds.map(int)),
                     "offload_tso": .bool(net.offloadTSO), "offload_ufo": .bool(net.offloadUFO),
                     "offload_csum": .bool(net.offloadCsum), "iommu": .bool(net.iommu), "vhost_user": .bool(false),
                     "pci_segment": int(net.pciSegment)])
        }
        let devices: [JSONValue] = config.devices.map { device in
            .object(["path": .string(device.path), "id": text(device.id), "iommu": .bool(device.iommu), "pci_segment": int(device.pciSegment)])
        }
        return .object([
            "payload": .object(["kernel": text(config.kernelPath), "initramfs": text(config.initramfsPath),
                                "cmdline": .string(config.cmdline)]),
            "cpus": .object(["boot_vcpus": int(config.cpus.boot), "max_vcpus": int(config.cpus.max),
                             "kvm_hyperv": .bool(false), "nested": .bool(true),
                             "topology": .object(["threads_per_core": int(1), "cores_per_die": int(config.cpus.max),
                                                  "dies_per_package": int(1), "packages": int(1)])]),
            "memory": .object(["size": int(config.memory.sizeBytes), "shared": .bool(config.memory.shared),
                               "prefault": .bool(config.memory.prefault), "mergeable": .bool(config.memory.mergeable),
                               "thp": .bool(config.memory.thp), "hugepages": .bool(false), "hotplug_method": .string("Acpi"),
                               "hotplug_size": config.memory.hotplugBytes == 0 ? .null : int(config.memory.hotplugBytes)]),
            "disks": config.disks.isEmpty ? .null : .array(disks),
            "net": config.nets.isEmpty ? .null : .array(nets),
            "devices": config.devices.isEmpty ? .null : .array(devices),
            "fs": config.fs.isEmpty ? .null : .array(config.fs.map { share in
                .object(["tag": .string(share.tag), "socket": .string(share.socket), "num_queues": int(share.numQueues),
                         "queue_size": int(share.queueSize), "id": text(share.id), "pci_segment": int(share.pciSegment)])
            }),
            "vsock": config.vsock.map { vsock in
                .object(["cid": int(vsock.cid), "socket": .string(vsock.socket), "id": text(vsock.id), "iommu": .bool(vsock.iommu),
                         "pci_segment": int(vsock.pciSegment)])
            } ?? .null,
            "rng": .object(["src": .string(config.rng.source), "iommu": .bool(config.rng.iommu), "pci_segment": int(config.rng.pciSegment)]),
            "serial": console(config.serial, pty: config.serialPty),
            "console": console(config.console, pciSegment: config.consolePCISegment, pty: config.consolePty),
            "platform": .object(["num_pci_segments": int(config.platform.pciSegments),
                                 "iommu_segments": config.platform.iommuSegments.isEmpty ? .null : .array(config.platform.iommuSegments.map(int)),
                                 "iommu_address_width_bits": int(config.platform.iommuAddressWidth)]),
            "iommu": .bool(config.hasIOMMU),
            "watchdog": .bool(false),
            "pvpanic": .bool(true),
            "landlock_enable": .bool(config.landlock),
            "landlock_rules": config.landlockRules.isEmpty ? .null : .array(config.landlockRules.map { rule in
                .object(["path": .string(rule.path), "access": .string((rule.read ? "r" : "") + (rule.write ? "w" : ""))])
            }),
        ])
    }
}
