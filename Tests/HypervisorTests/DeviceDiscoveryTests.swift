import Foundation
import Testing
@testable import Hypervisor

/// A sysfs tree in a temporary directory: devices, their drivers and IOMMU groups.
final class FakeSysfs {
    let root = FileManager.default.temporaryDirectory.appendingPathComponent("sysfs-\(UUID().uuidString)").path

    deinit { try? FileManager.default.removeItem(atPath: root) }

    func device(_ bdf: String, vendor: String = "0x1234", device: String = "0x11e8", driver: String?, group: Int?, pin: UInt8 = 1) throws {
        let dir = "\(root)/bus/pci/devices/\(bdf)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try "\(vendor)\n".write(toFile: "\(dir)/vendor", atomically: true, encoding: .utf8)
        try "\(device)\n".write(toFile: "\(dir)/device", atomically: true, encoding: .utf8)
        var config = Data(count: 64)
        config[0x3d] = pin
        try config.write(to: URL(fileURLWithPath: "\(dir)/config"))
        if let driver {
            try FileManager.default.createDirectory(atPath: "\(root)/bus/pci/drivers/\(driver)", withIntermediateDirectories: true)
            try FileManager.default.createSymbolicLink(atPath: "\(dir)/driver", withDestinationPath: "../../../bus/pci/drivers/\(driver)")
        }
        if let group {
            let groupDir = "\(root)/kernel/iommu_groups/\(group)/devices"
            try FileManager.default.createDirectory(atPath: groupDir, withIntermediateDirectories: true)
            try FileManager.default.createSymbolicLink(atPath: "\(dir)/iommu_group", withDestinationPath: "../../../kernel/iommu_groups/\(group)")
            try FileManager.default.createSymbolicLink(atPath: "\(groupDir)/\(bdf)", withDestinationPath: "../../../../bus/pci/devices/\(bdf)")
        }
    }
}

@Suite("--device: parsing and preflight")
struct DeviceDiscoveryTests {
    @Test("the device's address from a sysfs path with or without a slash, or a bare address", arguments: [
        ("/sys/bus/pci/devices/0000:01:00.0/", "0000:01:00.0"),
        ("/sys/bus/pci/devices/0000:01:00.0", "0000:01:00.0"),
        ("0000:3B:00.1", "0000:3b:00.1"),
        ("01:00.0", "0000:01:00.0"),
    ])
    func address(path: String, bdf: String) throws {
        #expect(try DeviceConfig(parsing: "path=\(path)").bdf == bdf)
    }

    @Test("bad paths and keys not built yet are refused", arguments: [
        ("path=/tmp/x", "expected /sys/bus/pci/devices/DDDD:BB:SS.F/ or a PCI address"),
        ("path=0000:01:20.0", "expected /sys/bus/pci/devices/DDDD:BB:SS.F/ or a PCI address"),
        ("path=0000:01:00.0,iommu=maybe", "--device iommu: invalid value 'maybe'"),
        ("path=0000:01:00.0,pci_segment=96", "--device pci_segment: invalid value '96': expected a whole number from 0 to 95"),
        ("path=0000:01:00.0,bind=sometimes", "--device bind: invalid value 'sometimes': expected auto"),
        ("path=0000:01:00.0,color=red", "--device: unknown key 'color'"),
    ])
    func refused(text: String, message: String) {
        #expect { try DeviceConfig(parsing: text) } throws: { "\($0)".contains(message) }
    }

    @Test("a device on vfio-pci in a viable group passes, with its interrupt pin")
    func viable() throws {
        let sysfs = FakeSysfs()
        try sysfs.device("0000:01:00.0", driver: "vfio-pci", group: 7, pin: 2)
        try sysfs.device("0000:01:00.1", driver: nil, group: 7)
        let found = try DeviceDiscovery(sysfs: sysfs.root).check([DeviceConfig(parsing: "path=0000:01:00.0")])
        #expect(found == [DeviceDiscovery.Device(bdf: "0000:01:00.0", vendor: "1234", device: "11e8", group: 7, interruptPin: 2)])
    }

    @Test("each preflight problem names its fix", arguments: [
        ("on another driver", "is bound to e1000e, not vfio-pci: echo 0000:01:00.0 > /sys/bus/pci/drivers/e1000e/unbind; modprobe vfio-pci; echo 1234 11e8 > /sys/bus/pci/drivers/vfio-pci/new_id"),
        ("without an IOMMU group", "0000:01:00.0 has no IOMMU group: the IOMMU is off; boot the host with intel_iommu=on (or amd_iommu=on)"),
        ("in a group that is not viable", "IOMMU group 7 is not viable: 0000:01:00.1, in the same group, is bound to snd_hda_intel; give it to vfio-pci too (or unbind it: echo 0000:01:00.1 > /sys/bus/pci/drivers/snd_hda_intel/unbind)"),
    ])
    func problems(what: String, message: String) throws {
        let sysfs = FakeSysfs()
        switch what {
        case "on another driver": try sysfs.device("0000:01:00.0", driver: "e1000e", group: 7)
        case "without an IOMMU group": try sysfs.device("0000:01:00.0", driver: "vfio-pci", group: nil)
        default:
            try sysfs.device("0000:01:00.0", driver: "vfio-pci", group: 7)
            try sysfs.device("0000:01:00.1", driver: "snd_hda_intel", group: 7)
        }
        let config = try DeviceConfig(parsing: "path=/sys/bus/pci/devices/0000:01:00.0/")
        #expect(throws: ConfigError.invalidValue(option: "--device", key: "path", value: config.path, reason: message)) {
            _ = try DeviceDiscovery(sysfs: sysfs.root).check([config])
        }
    }

    @Test("functions of one IOMMU group: all without iommu=on, or one alone behind the virtual IOMMU, on the command line or beside the VM's devices")
    func groupsAcrossTheIOMMU() throws {
        let sysfs = FakeSysfs()
        try sysfs.device("0000:01:00.0", driver: "vfio-pci", group: 7)
        try sysfs.device("0000:01:00.1", driver: "vfio-pci", group: 7)
        try sysfs.device("0000:02:00.0", driver: "vfio-pci", group: 8)
        let discovery = DeviceDiscovery(sysfs: sysfs.root)
        let function0 = try DeviceConfig(parsing: "path=0000:01:00.0"), function1 = try DeviceConfig(parsing: "path=0000:01:00.1")
        let behind0 = try DeviceConfig(parsing: "path=0000:01:00.0,iommu=on"), behind1 = try DeviceConfig(parsing: "path=0000:01:00.1,iommu=on")
        let other = try DeviceConfig(parsing: "path=0000:02:00.0,iommu=on")
        #expect(try discovery.check([function0, function1, other]).map(\.group) == [7, 7, 8])
        let refusal = { (config: DeviceConfig, held: String, with: String) in
            ConfigError.invalidValue(option: "--device", key: "path", value: config.path,
                reason: "IOMMU group 7 also holds \(held), assigned to this VM \(with) iommu=on: the functions of one group "
                    + "share their DMA mappings; assign them all without iommu=on, or only one of the group with it")
        }
        #expect(throws: refusal(behind1, "0000:01:00.0", "without")) { _ = try discovery.check([function0, behind1]) }
        #expect(throws: refusal(behind1, "0000:01:00.0", "with")) { _ = try discovery.check([behind0, behind1]) }
        #expect(throws: refusal(function1, "0000:01:00.0", "with")) { _ = try discovery.check([behind0, function1]) }
        // Hot-added beside what the VM has: the same rule, and only the new devices come back.
        let assigned = [(config: behind0, device: try discovery.check(behind0))]
        #expect(throws: refusal(function1, "0000:01:00.0", "with")) { _ = try discovery.check([function1], beside: assigned) }
        #expect(try discovery.check([other], beside: [(function0, try discovery.check(function0))]).map(\.bdf) == ["0000:02:00.0"])
        #expect(try discovery.check([function1], beside: [(function0, try discovery.check(function0))]).map(\.bdf) == ["0000:01:00.1"])
    }

    @Test("a missing device, and the same device twice")
    func missingAndTwice() throws {
        let sysfs = FakeSysfs()
        try sysfs.device("0000:01:00.0", driver: "vfio-pci", group: 7)
        let discovery = DeviceDiscovery(sysfs: sysfs.root)
        #expect { _ = try discovery.check([DeviceConfig(parsing: "path=0000:02:00.0")]) } throws: {
            "\($0)".contains("no PCI device 0000:02:00.0 on this host")
        }
        #expect { _ = try discovery.check([DeviceConfig(parsing: "path=0000:01:00.0"), DeviceConfig(parsing: "path=01:00.0")]) } throws: {
            "\($0)".contains("0000:01:00.0 is given twice")
        }
    }
}
