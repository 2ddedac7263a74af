#if canImport(Glibc)
import Glibc
#endif

/// What sysfs says about a host PCI device to assign, checked before
/// anything is created, with the exact fix for each thing that is wrong:
/// the device exists, vfio-pci holds it, the IOMMU put it in a group, and
/// every device of that group is on vfio-pci or on no driver.
public struct DeviceDiscovery: Sendable {
    /// sysfs's root; tests point it at a tree of their own.
    public let sysfs: String

    public init(sysfs: String = "/sys") {
        self.sysfs = sysfs
    }

    public struct Device: Sendable, Equatable {
        public let bdf: String
        public let vendor: String
        public let device: String
        public let group: Int
        /// The config space's interrupt pin: 0 none, 1 INTA … 4 INTD.
        public let interruptPin: UInt8
    }

    func fail(_ config: DeviceConfig, _ reason: String) -> ConfigError {
        .invalidValue(option: "--device", key: "path", value: config.path, reason: reason)
    }

    /// Checks one device; throws the first problem with its fix.
    public func check(_ config: DeviceConfig) throws(ConfigError) -> Device {
        let bdf = config.bdf
        let dir = "\(sysfs)/bus/pci/devices/\(bdf)"
        guard isDirectory(dir) else {
            throw fail(config, "no PCI device \(bdf) on this host (lspci -D lists them)")
        }
        let vendor = hexID(readText("\(dir)/vendor")), device = hexID(readText("\(dir)/device"))
        let driver = linkName("\(dir)/driver")
        guard driver == "vfio-pci" else {
            let unbind = driver.map { "echo \(bdf) > /sys/bus/pci/drivers/\($0)/unbind; " } ?? ""
            let held = driver.map { "is bound to \($0), not vfio-pci" } ?? "is bound to no driver, not vfio-pci"
            throw fail(config, "\(held): \(unbind)modprobe vfio-pci; echo \(vendor) \(device) > /sys/bus/pci/drivers/vfio-pci/new_id")
        }
        guard let groupName = linkName("\(dir)/iommu_group"), let group = Int(groupName) else {
            throw fail(config, "\(bdf) has no IOMMU group: the IOMMU is off; boot the host with intel_iommu=on (or amd_iommu=on)")
        }
        for member in listDirectory("\(sysfs)/kernel/iommu_groups/\(group)/devices") where member != bdf {
            if let other = linkName("\(sysfs)/bus/pci/devices/\(member)/driver"), other != "vfio-pci" {
                throw fail(config, "IOMMU group \(group) is not viable: \(member), in the same group, is bound to \(other); "
                    + "give it to vfio-pci too (or unbind it: echo \(member) > /sys/bus/pci/drivers/\(other)/unbind)")
            }
        }
        // Byte 0x3d of config space; the first 64 bytes are readable by anyone.
        let pin = readBytes("\(dir)/config", count: 0x3e).map { $0.count == 0x3e ? $0[0x3d] : 0 } ?? 0
        return Device(bdf: bdf, vendor: vendor, device: device, group: group, interruptPin: pin)
    }

    /// Checks every device, that none is given twice, and that none shares
    /// an IOMMU group with one of them or of `assigned` (the VM's devices
    /// already open) across the virtual IOMMU: a group is one DMA address
    /// space, so its functions are in one VFIO container — the VMM's, all
    /// without `iommu=on`, or with it a container of the guest's for a
    /// single function. (A second container's open of the group fails
    /// with EBUSY, which reads as another process holding it.)
    public func check(_ configs: [DeviceConfig], beside assigned: [(config: DeviceConfig, device: Device)] = [])
        throws(ConfigError) -> [Device] {
        var seen = Set<String>()
        var placed = assigned
        for config in configs {
            guard seen.insert(config.bdf).inserted else {
                throw fail(config, "\(config.bdf) is given twice; a device can be assigned once")
            }
            let device = try check(config)
            if let other = placed.first(where: { $0.device.group == device.group && ($0.config.iommu || config.iommu) }) {
                throw fail(config, "IOMMU group \(device.group) also holds \(other.device.bdf), assigned to this VM "
                    + "\(other.config.iommu ? "with" : "without") iommu=on: the functions of one group share their DMA "
                    + "mappings; assign them all without iommu=on, or only one of the group with it")
            }
            placed.append((config, device))
        }
        return placed.dropFirst(assigned.count).map(\.device)
    }

    private func hexID(_ text: String?) -> String {
        let t = (text ?? "").trimmingCharacters()
        return t.hasPrefix("0x") ? String(t.dropFirst(2)) : t
    }
}

extension String {
    fileprivate func trimmingCharacters() -> String {
        String(self.drop { $0 == " " || $0 == "\n" }.reversed().drop { $0 == " " || $0 == "\n" }.reversed())
    }
}

func isDirectory(_ path: String) -> Bool {
    var st = stat()
    return stat(path, &st) == 0 && st.st_mode & S_IFMT == S_IFDIR
}

/// The last component of a symlink's target, or nil.
func linkName(_ path: String) -> String? {
    var buffer = [CChar](repeating: 0, count: 4096)
    let n = readlink(path, &buffer, buffer.count - 1)
    guard n > 0 else { return nil }
    let target = String(decoding: buffer.prefix(n).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    return target.split(separator: "/").last.map(String.init)
}

func listDirectory(_ path: String) -> [String] {
    guard let dir = opendir(path) else { return [] }
    defer { closedir(dir) }
    var names: [String] = []
    while let entry = readdir(dir) {
        let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        if name != "." && name != ".." { names.append(name) }
    }
    return names.sorted()
}

func readBytes(_ path: String, count: Int) -> [UInt8]? {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    var buffer = [UInt8](repeating: 0, count: count)
    let n = read(fd, &buffer, count)
    return n >= 0 ? Array(buffer.prefix(n)) : nil
}

func readText(_ path: String) -> String? {
    readBytes(path, count: 4096).map { String(decoding: $0, as: UTF8.self) }
}
