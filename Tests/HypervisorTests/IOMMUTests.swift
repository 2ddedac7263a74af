import Foundation
import Testing
@testable import Hypervisor

/// The virtual IOMMU: its options as Cloud Hypervisor spells them, the
/// VIOT that tells the guest what sits behind it, and a tiny guest driving
/// virtio-iommu with a virtio-rng behind it (Guests/viommu.c). Linux's
/// own driver and an assigned device behind it are the lab's
/// (`LabVFIOTests.virtualIOMMU`).
@Suite("Virtual IOMMU")
struct IOMMUTests {
    @Test("iommu=on where Cloud Hypervisor takes it; refused where a device cannot translate, and on a serial port")
    func options() throws {
        #expect(try DiskConfig(parsing: "path=/a,iommu=on").iommu)
        #expect(try !DiskConfig(parsing: "path=/a").iommu)
        #expect(try NetConfig(parsing: "tap=t0,iommu=on").iommu)
        #expect(try RngConfig(parsing: "src=/dev/urandom,iommu=on").iommu)
        #expect(try VsockConfig(parsing: "cid=3,socket=/tmp/v.sock,iommu=on").iommu)
        #expect(try DeviceConfig(parsing: "path=/sys/bus/pci/devices/0000:01:00.0/,iommu=on").iommu)
        #expect(try ConsoleOption(parsing: "tty,iommu=on").iommu)
        #expect(throws: ConfigError.self) { try DiskConfig(parsing: "vhost_user=on,socket=/tmp/b.sock,iommu=on") }
        #expect(throws: ConfigError.self) { try FsConfig(parsing: "tag=t,socket=/tmp/f.sock,iommu=on") }
        #expect(throws: ConfigError.self) { try ConsoleConfig(parsing: "tty,iommu=on", option: "--serial") }
    }

    @Test("--platform iommu_segments and iommu_address_width: Cloud Hypervisor's lists, bounds and the rule that a device on such a segment is behind the IOMMU")
    func platform() throws {
        let platform = try PlatformConfig(parsing: "num_pci_segments=3,iommu_segments=[1-2],iommu_address_width=48")
        #expect(platform.iommuSegments == [1, 2] && platform.iommuAddressWidth == 48)
        #expect(try PlatformConfig(parsing: "num_pci_segments=2").iommuAddressWidth == 64)
        #expect(try PlatformConfig(parsing: "iommu_segments=[]").iommuSegments.isEmpty)
        for text in ["iommu_segments=[1]", "num_pci_segments=2,iommu_segments=[x]", "iommu_address_width=65", "iommu_address_width=8"] {
            #expect(throws: ConfigError.self, "\(text)") { try PlatformConfig(parsing: text) }
        }
        var config = VMConfig(kernelPath: "/k", platform: try PlatformConfig(parsing: "num_pci_segments=2,iommu_segments=[1]"))
        config.disks = [try DiskConfig(parsing: "path=/a,pci_segment=1")]
        #expect(throws: ConfigError.self) { try config.validate() }
        config.disks = [try DiskConfig(parsing: "path=/a,pci_segment=1,iommu=on")]
        try config.validate()
        #expect(config.hasIOMMU)
        #expect(!VMConfig(kernelPath: "/k").hasIOMMU)
        // Nothing parsed and dropped: a console that is off has nothing to put behind the IOMMU.
        var off = VMConfig(kernelPath: "/k", console: .off)
        off.consoleIOMMU = true
        #expect(throws: ConfigError.self) { try off.validate() }
    }

    @Test("the API's iommu fields: taken in vm.create, given back by vm.info")
    func apiFields() throws {
        let body = #"{"payload": {"kernel": "/k"}, "disks": [{"path": "/a", "iommu": true}], "rng": {"src": "/dev/urandom", "iommu": true},"#
            + #" "console": {"mode": "Tty", "iommu": true}, "platform": {"num_pci_segments": 2, "iommu_segments": [1]}}"#
        let config = try VmConfigJSON.config(from: Array(body.utf8), base: VMConfig())
        #expect(config.disks.first?.iommu == true && config.rng.iommu && config.consoleIOMMU && config.platform.iommuSegments == [1])
        guard case .object(let info) = VmConfigJSON.json(config), case .object(let platform)? = info["platform"] else {
            Issue.record("vm.info has no platform")
            return
        }
        #expect(info["iommu"] == .bool(true))
        #expect(platform["iommu_segments"] == .array([.integer(1)]))
        let plain = try VmConfigJSON.config(from: Array(#"{"payload": {"kernel": "/k"}, "iommu": true}"#.utf8), base: VMConfig())
        #expect(plain.iommu && plain.hasIOMMU)
    }

    @Test("the VIOT: the virtio-iommu's node, a PCI range per function behind it and one per segment behind it whole (from slot 1, around the IOMMU's own function)")
    func viot() {
        let viot = VIOTDescription(iommu: PCIAddress(segment: 0, slot: 1),
                                   endpoints: [PCIAddress(segment: 0, slot: 3), PCIAddress(segment: 1, slot: 2)], segments: [1])
        let table = viot.table()
        func le(_ at: Int, _ bytes: Int) -> Int { (0..<bytes).reduce(0) { $0 | Int(table[at + $1]) << (8 * $1) } }
        #expect(Array(table[0..<4]) == Array("VIOT".utf8))
        #expect(le(4, 4) == table.count && table.reduce(UInt8(0), &+) == 0)
        #expect(le(36, 2) == 3 && le(38, 2) == 48)
        // virtio-pci IOMMU: type 3, 16 bytes, segment 0, requester ID 00:01.0.
        #expect(table[48] == 3 && le(50, 2) == 16 && le(52, 2) == 0 && le(54, 2) == 1 << 3)
        // 00:03.0 alone (segment 1's function is in the segment's range).
        #expect(table[64] == 1 && le(66, 2) == 24 && le(68, 4) == 3 << 3 && le(72, 2) == 0 && le(74, 2) == 0
                && le(76, 2) == 3 << 3 && le(78, 2) == 3 << 3 && le(80, 2) == 48)
        // Segment 1 whole but its host bridge: endpoint IDs 0x10000 + requester ID.
        #expect(table[88] == 1 && le(92, 4) == 0x10008 && le(96, 2) == 1 && le(98, 2) == 1
                && le(100, 2) == 8 && le(102, 2) == 0xffff && le(104, 2) == 48)
        #expect(table.count == 112)
        // Segment 0 whole, the IOMMU at 00:02.0 in it: the functions before and after it.
        let around = VIOTDescription(iommu: PCIAddress(segment: 0, slot: 2), endpoints: [], segments: [0]).table()
        func word(_ at: Int) -> Int { Int(around[at]) | Int(around[at + 1]) << 8 }
        let ranges: [[Int]] = stride(from: 64, to: around.count, by: 24).map { (at: Int) -> [Int] in [word(at + 12), word(at + 14)] }
        #expect(ranges == [[8, 15], [17, 0xffff]], "\(ranges)")
        let tables = try? ACPITables(cpus: CPUDescription(boot: 1, max: 1), memoryBytes: 1 << 30, viot: viot).build()
        #expect(tables?.contains { $0.bytes == table } == true, "the VIOT is not among the tables")
    }

    @Test("a tiny guest's virtio-iommu under seccomp: probe, refusals by status, an rng filled through its mappings, a fault on the event queue, mappings bounded by RAM, a reset detaching all",
          .enabled(if: Host.hasKVM, "needs /dev/kvm"))
    func guestDriver() throws {
        let r = runVMM(["--kernel", try Guests.path("viommu"), "--serial", "tty", "--console", "off", "--memory", "size=64M",
                        "--rng", "src=/dev/urandom,iommu=on", "--seccomp", "true"], timeout: 60)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(!r.stdout.contains("UNEXPECTED") && !r.stdout.contains("viommu:"), "\(r.stdout)")
        // INPUT_RANGE, MAP_UNMAP and PROBE; VERSION_1 in the high word, not shown.
        for line in ["iommu features 0x30000015 page sizes 0xfffff000", "rng offers ACCESS_PLATFORM",
                     "probe: type 0x00000001 subtype 0x00000001 from 0xfee00000 to 0xfeefffff",
                     "rng filled its buffer through the iommu", "a buffer across two mappings filled both pieces",
                     "an unmapped buffer was refused", "rng needs a reset",
                     // MAPPING; WRITE | ADDRESS; the rng at 00:02.0 (the IOMMU took 00:01.0).
                     "fault: reason 0x00000002 flags 0x00000102 endpoint 0x00000010 address 0x10004000",
                     // 64 MiB of RAM in 4 KiB mappings, and not one more.
                     "mappings until refused: 0x00004000", "map after that: as expected", "detach after a reset: as expected"] {
            #expect(r.stdout.contains(line), "missing '\(line)': \(r.stdout)")
        }
        #expect(r.stdout.components(separatedBy: ": as expected").count == 23, "\(r.stdout)")
        #expect(r.stderr.contains("virtio-rng: the guest's queue 0 has a buffer or ring outside its IOMMU mappings"), "\(r.stderr)")
    }

    @Test("a snapshot of a VM with a virtual IOMMU is refused by name; hot-added devices must match the IOMMU's segments",
          .enabled(if: Host.hasKVM, "needs /dev/kvm"))
    func refusals() throws {
        let api = try APIVMM(["--kernel", try Guests.path("hotplug"), "--serial", "tty", "--console", "off",
                              "--platform", "num_pci_segments=2,iommu_segments=[1]", "--rng", "src=/dev/urandom"])
        #expect(eventually(10) { api.stdout.contains("hotplug guest ready") })
        #expect(api.curl("PUT", "vm.pause").status == 204)
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("viommu-snap-\(getpid())").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let snapshot = api.curl("PUT", "vm.snapshot", body: #"{"destination_url": "file://\#(dir)"}"#)
        #expect(snapshot.status >= 400 && snapshot.body.contains("virtio-iommu"), "\(snapshot.body)")
        #expect(api.curl("PUT", "vm.resume").status == 204)
        let disk = dir + "/disk.raw"
        FileManager.default.createFile(atPath: disk, contents: Data(count: 1 << 20))
        let onSegment = api.curl("PUT", "vm.add-disk", body: #"{"path": "\#(disk)", "pci_segment": 1}"#)
        #expect(onSegment.status >= 400 && onSegment.body.contains("iommu_segments"), "\(onSegment.body)")
        let offSegment = api.curl("PUT", "vm.add-disk", body: #"{"path": "\#(disk)", "iommu": true}"#)
        #expect(offSegment.status >= 400 && offSegment.body.contains("iommu_segments=[0]"), "\(offSegment.body)")
        let behind = api.curl("PUT", "vm.add-disk", body: #"{"path": "\#(disk)", "pci_segment": 1, "iommu": true}"#)
        #expect(behind.status == 200 && behind.body.contains("0001:00:01.0"), "\(behind.body)")
        #expect(api.shutdown() == 0)
    }
}
