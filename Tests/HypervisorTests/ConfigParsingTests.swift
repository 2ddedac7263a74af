import Testing
@testable import Hypervisor

@Suite("Option values")
struct ConfigParsingTests {
    @Test("sizes take bytes or a K/M/G suffix", arguments: [
        ("4096", UInt64(4096)), ("64K", 64 << 10), ("512M", 512 << 20), ("2G", 2 << 30), ("1g", 1 << 30),
    ])
    func sizes(text: String, bytes: UInt64) throws {
        #expect(try ByteSize.parse(text) == bytes)
    }

    @Test("bad sizes are refused", arguments: ["", "M", "12Q", "-1M", "1.5G", "99999999999999999999", "17179869184G"])
    func badSizes(text: String) {
        #expect(throws: ByteSize.ParseError.self) { try ByteSize.parse(text) }
    }

    @Test("key=value lists keep bracketed and quoted commas")
    func optionListSplitting() throws {
        let list = try OptionList(#"boot=2,affinity=[0@[0,1],1@[2]],features="a,b""#, option: "--cpus", known: CPUsConfig.known)
        #expect(list.keys == ["boot", "affinity", "features"])
        #expect(list["affinity"] == "[0@[0,1],1@[2]]")
        #expect(list["features"] == "a,b")
    }

    @Test("--disk lock_granularity: Cloud Hypervisor's byte-range by default, full on request; the API's spellings too")
    func lockGranularity() throws {
        #expect(try DiskConfig(parsing: "path=/a").lockWholeFile == false)
        #expect(try DiskConfig(parsing: "path=/a,lock_granularity=byte-range").lockWholeFile == false)
        #expect(try DiskConfig(parsing: "path=/a,lock_granularity=full").lockWholeFile == true)
        #expect(throws: ConfigError.invalidValue(option: "--disk", key: "lock_granularity", value: "some", reason: "expected byte-range or full")) {
            try DiskConfig(parsing: "path=/a,lock_granularity=some")
        }
        #expect(try VmConfigJSON.diskConfig(["path": .string("/a"), "lock_granularity": .string("Full")]).lockWholeFile)
        #expect(try !VmConfigJSON.diskConfig(["path": .string("/a"), "lock_granularity": .string("ByteRange")]).lockWholeFile)
    }

    @Test("unknown, duplicate and bare keys are named")
    func optionListErrors() {
        #expect(throws: ConfigError.unknownKey(option: "--cpus", key: "bogus", known: CPUsConfig.known)) {
            try CPUsConfig(parsing: "boot=1,bogus=2")
        }
        #expect(throws: ConfigError.duplicateKey(option: "--cpus", key: "boot")) {
            try CPUsConfig(parsing: "boot=1,boot=2")
        }
        #expect(throws: ConfigError.self) { try CPUsConfig(parsing: "boot") }
    }

    @Test("--cpus", arguments: [("boot=4", 4, 4), ("boot=1,max=1", 1, 1), ("", 1, 1), ("boot=254", 254, 254), ("4", 4, 4),
                                ("boot=2,max=4", 2, 4), ("max=254", 1, 254)])
    func cpus(text: String, boot: Int, max: Int) throws {
        let cpus = try CPUsConfig(parsing: text)
        #expect(cpus.boot == boot && cpus.max == max)
    }

    @Test("--cpus refuses 0, too many, max below boot, and what is not built")
    func badCPUs() throws {
        for text in ["boot=0", "boot=255", "boot=x", "boot=4,max=2", "0", "4x", "max=255"] {
            #expect(throws: ConfigError.self, "\(text)") { try CPUsConfig(parsing: text) }
        }
        // The topology every VM has (Kata sends it) is accepted; others are not built.
        #expect(try CPUsConfig(parsing: "boot=2,max=4,topology=1:4:1:1").max == 4)
        #expect(throws: ConfigError.notSupported("--cpus topology=2:2:1:1 (only 1:4:1:1)")) {
            try CPUsConfig(parsing: "boot=2,max=4,topology=2:2:1:1")
        }
        for text in ["boot=2,topology=1:3:1:1", "boot=2,topology=1:2", "boot=2,topology=0:2:1:1"] {
            #expect(throws: ConfigError.self, "\(text)") { try CPUsConfig(parsing: text) }
        }
    }

    @Test("--platform: PCI segments, 1 to 96; the rest of it not built")
    func platform() throws {
        #expect(try PlatformConfig(parsing: "num_pci_segments=2").pciSegments == 2)
        #expect(try PlatformConfig(parsing: "num_pci_segments=96,iommu_segments=[],vfio_p2p_dma=off").pciSegments == 96)
        for text in ["num_pci_segments=0", "num_pci_segments=97", "num_pci_segments=x", "uuid=1234", "tdx=on", "bogus=1",
                     "vfio_p2p_dma=on"] {
            #expect(throws: ConfigError.self, "\(text)") { try PlatformConfig(parsing: text) }
        }
    }

    @Test("pci_segment on --disk, --net, --device, --rng and --console: a segment the VM has (Cloud Hypervisor's \"Invalid PCI segment id\")")
    func pciSegment() throws {
        #expect(try DiskConfig(parsing: "path=a.raw,pci_segment=1").pciSegment == 1)
        #expect(try NetConfig(parsing: "tap=t0,pci_segment=2").pciSegment == 2)
        #expect(try DeviceConfig(parsing: "path=0000:01:00.0,pci_segment=1").pciSegment == 1)
        #expect(try RngConfig(parsing: "src=/dev/urandom,pci_segment=1").pciSegment == 1)
        #expect(try DiskConfig(parsing: "path=a.raw").pciSegment == 0)
        // The virtio console's segment, after a mode or a file; COM1 has none.
        #expect(try ConsoleOption(parsing: "tty,pci_segment=1") == ConsoleOption(mode: .tty, pciSegment: 1))
        #expect(try ConsoleOption(parsing: "file=/tmp/c,pci_segment=2") == ConsoleOption(mode: .file(path: "/tmp/c"), pciSegment: 2))
        #expect(try ConsoleOption(parsing: "off") == ConsoleOption(mode: .off))
        #expect { try ConsoleOption(parsing: "tty,pci_device_id=3") } throws: { "\($0)".contains("--console pci_device_id=3 is not supported yet") }
        #expect { try ConsoleConfig(parsing: "tty,pci_segment=1", option: "--serial") } throws: {
            "\($0)".contains("unknown key 'pci_segment'")
        }
        var config = VMConfig(kernelPath: "/k")
        config.platform = PlatformConfig(pciSegments: 2)
        config.disks = [try DiskConfig(parsing: "path=a.raw,pci_segment=1")]
        try config.validate()
        config.nets = [try NetConfig(parsing: "tap=t0,pci_segment=2")]
        #expect { try config.validate() } throws: {
            "\($0)" == "--net pci_segment: invalid value '2': no such PCI segment: the VM has 2 (give --platform num_pci_segments=3 or more)"
        }
        var console = config
        console.nets = []
        console.consolePCISegment = 2
        #expect { try console.validate() } throws: { "\($0)".hasPrefix("--console pci_segment: invalid value '2': no such PCI segment") }
        // 31 slots per segment: 40 disks fit on two.
        config.nets = []
        config.disks = try (0..<40).map { (index) throws(ConfigError) in try DiskConfig(parsing: "path=d\(index).raw,pci_segment=\(index % 2)") }
        try config.validate()
        config.disks = try (0..<40).map { (index) throws(ConfigError) in try DiskConfig(parsing: "path=d\(index).raw") }
        #expect(throws: ConfigError.self) { try config.validate() }
    }

    @Test("--vsock: Cloud Hypervisor's syntax, its special CIDs refused, one per VM, an id of its own, a segment the VM has")
    func vsock() throws {
        #expect(try VsockConfig(parsing: "cid=3,socket=/tmp/ch.vsock") == VsockConfig(cid: 3, socket: "/tmp/ch.vsock"))
        #expect(try VsockConfig(parsing: "cid=4294967294,socket=/s,id=v0,iommu=off,pci_segment=1")
                == VsockConfig(cid: 4_294_967_294, socket: "/s", id: "v0", pciSegment: 1))
        let refused: [(String, String)] = [
            ("socket=/s", "--vsock: cid=… is required (the guest's context id, 3 or more)"),
            ("cid=3", "--vsock: socket=… is required"),
            ("cid=2,socket=/s", "--vsock cid: invalid value '2': a special VSOCK CID (0 hypervisor, 1 loopback, 2 host, 4294967295 any): give 3 or more"),
            ("cid=4294967295,socket=/s", "--vsock cid: invalid value '4294967295': a special VSOCK CID"),
            ("cid=-1,socket=/s", "--vsock cid: invalid value '-1'"),
            ("cid=3,socket=/" + String(repeating: "s", count: 100), "--vsock socket: invalid value"),
        ]
        for (text, message) in refused {
            #expect { try VsockConfig(parsing: text) } throws: { "\($0)".hasPrefix(message) }
        }
        var config = VMConfig(kernelPath: "/k")
        config.vsock = try VsockConfig(parsing: "cid=3,socket=/s,pci_segment=1")
        #expect { try config.validate() } throws: { "\($0)".hasPrefix("--vsock pci_segment: invalid value '1': no such PCI segment") }
        config.vsock = try VsockConfig(parsing: "cid=3,socket=/s,id=__v")
        #expect { try config.validate() } throws: { "\($0)".contains("ids beginning with __ are reserved") }
        config.vsock = try VsockConfig(parsing: "cid=3,socket=/s,id=d")
        config.disks = [try DiskConfig(parsing: "path=a.raw,id=d")]
        #expect { try config.validate() } throws: { "\($0)" == "--vsock: id 'd' is given to more than one device" }
        // Named as Cloud Hypervisor names it, after the disks and networks.
        config.vsock?.id = nil
        config.disks = [try DiskConfig(parsing: "path=a.raw")]
        #expect(config.withDeviceIDs().vsock?.id == "_vsock1")
    }

    @Test("--fs: Cloud Hypervisor's syntax and defaults; a long tag, odd queue sizes, more queues than vCPUs and private RAM refused")
    func fs() throws {
        #expect(try FsConfig(parsing: "tag=myfs,socket=/tmp/virtiofs") == FsConfig(tag: "myfs", socket: "/tmp/virtiofs", numQueues: 1, queueSize: 1024))
        #expect(try FsConfig(parsing: "tag=t,socket=/s,num_queues=2,queue_size=512,id=share,pci_segment=1")
                == FsConfig(tag: "t", socket: "/s", numQueues: 2, queueSize: 512, id: "share", pciSegment: 1))
        let refused: [(String, String)] = [
            ("socket=/s", "--fs: tag=… is required"),
            ("tag=t", "--fs: socket=… is required"),
            ("tag=\(String(repeating: "t", count: 37)),socket=/s", "--fs tag: invalid value"),
            ("tag=t,socket=/s,queue_size=1000", "--fs queue_size: invalid value '1000': not a power of two"),
            ("tag=t,socket=/s,queue_size=2048", "--fs queue_size: invalid value '2048'"),
            ("tag=t,socket=/s,num_queues=0", "--fs num_queues: invalid value '0'"),
            ("tag=t,socket=/s,pci_device_id=3", "--fs pci_device_id=3 is not supported yet"),
        ]
        for (text, message) in refused {
            #expect { try FsConfig(parsing: text) } throws: { "\($0)".hasPrefix(message) }
        }
        var config = VMConfig(kernelPath: "/k")
        config.fs = [try FsConfig(parsing: "tag=t,socket=/s")]
        #expect { try config.validate() } throws: { "\($0)" == "--fs tag=t: a vhost-user backend maps guest RAM: give --memory shared=on" }
        config.memory.shared = true
        try config.validate()
        config.fs = [try FsConfig(parsing: "tag=t,socket=/s,num_queues=2")]
        #expect { try config.validate() } throws: { "\($0)".contains("num_queues=2 is more request queues than the 1 vCPU(s)") }
        config.fs = [try FsConfig(parsing: "tag=t,socket=/s")]
        config.vsock = try VsockConfig(parsing: "cid=3,socket=/v")
        let named = config.withDeviceIDs()
        #expect(named.fs[0].id == "_fs0" && named.vsock?.id == "_vsock1")
    }

    @Test("--memory")
    func memory() throws {
        let m = try MemoryConfig(parsing: "size=1G,shared=on,prefault=on,mergeable=off,thp=off")
        #expect(m == MemoryConfig(sizeBytes: 1 << 30, shared: true, prefault: true, mergeable: false, thp: false))
        #expect(try MemoryConfig(parsing: "").sizeBytes == 512 << 20)
        #expect(try MemoryConfig(parsing: "size=64M,hugepages=off").sizeBytes == 64 << 20)
    }

    @Test("--memory refuses tiny, unaligned and unbuilt settings")
    func badMemory() throws {
        for text in ["size=0", "size=1000", "size=512K", "size=1M,shared=maybe", "hotplug_size=17T", "hotplug_size=x"] {
            #expect(throws: ConfigError.self, "\(text)") { try MemoryConfig(parsing: text) }
        }
        #expect(throws: ConfigError.notSupported("--memory hugepages=on")) { try MemoryConfig(parsing: "size=1G,hugepages=on") }
        #expect(throws: ConfigError.notSupported("--memory hotplugged_size=1G")) { try MemoryConfig(parsing: "hotplug_size=2G,hotplugged_size=1G") }
        #expect(throws: ConfigError.notSupported("--memory hotplug_method=virtio-mem")) {
            try MemoryConfig(parsing: "hotplug_size=2G,hotplug_method=virtio-mem")
        }
        #expect(try MemoryConfig(parsing: "size=1G,hotplug_size=2G").hotplugBytes == 2 << 30)
    }

    @Test("--serial and --console", arguments: [
        ("off", ConsoleConfig.off), ("null", .null), ("tty", .tty), ("pty", .pty),
        ("file=/tmp/x.log", .file(path: "/tmp/x.log")), ("socket=/tmp/s", .socket(path: "/tmp/s")),
    ])
    func console(text: String, expected: ConsoleConfig) throws {
        #expect(try ConsoleConfig(parsing: text, option: "--serial") == expected)
    }

    @Test("bad console values", arguments: ["", "foo", "file=", "path=/x", "file=/x,iommu=on"])
    func badConsole(text: String) {
        #expect(throws: ConfigError.self) { try ConsoleConfig(parsing: text, option: "--serial") }
    }

    @Test("device options check their syntax")
    func devices() throws {
        #expect(try DiskConfig(parsing: "path=/a.raw,readonly=on,id=d0") == DiskConfig(path: "/a.raw", readonly: true, id: "d0"))
        #expect(throws: ConfigError.missing(option: "--disk", what: "path=… is required")) { try DiskConfig(parsing: "readonly=on") }
        #expect(throws: ConfigError.self) { try DiskConfig(parsing: "path=/a,cache=none") }
        #expect(try DeviceConfig(parsing: "path=/sys/bus/pci/devices/0000:01:00.0/").path == "/sys/bus/pci/devices/0000:01:00.0/")
        #expect(throws: ConfigError.self) { try DeviceConfig(parsing: "id=x") }
        #expect(try RngConfig(parsing: "").source == "/dev/urandom")
    }

    @Test("a launch needs a kernel and refuses what is not built")
    func validation() throws {
        #expect(throws: ConfigError.self) { try VMConfig().validate() }
        var config = VMConfig(kernelPath: "/k")
        try config.validate()
        config.console = .off
        try config.validate()
        // Built now: disks, a console on the terminal, an rng from a chosen source.
        config.disks = [DiskConfig(path: "/a", readonly: true, id: nil)]
        config.console = .tty
        config.rng = RngConfig(source: "/dev/random")
        try config.validate()

        let refused: [(inout VMConfig) -> Void] = [
            { $0.vsock = VsockConfig(cid: 3, socket: "/tmp/v.sock", pciSegment: 1) },
            { $0.fs = [FsConfig(tag: "t", socket: "/tmp/fs.sock")] }, // private RAM
            { $0.disks = [DiskConfig(path: "/a", readonly: false, id: "d"), DiskConfig(path: "/b", readonly: false, id: "d")] },
            { $0.disks = Array(repeating: DiskConfig(path: "/a", readonly: false, id: nil), count: 30) },
            { $0.nets = [try! NetConfig(parsing: "tap=tap0,num_queues=4")] }, // two pairs for one vCPU
            { $0.nets = [try! NetConfig(parsing: "fd=3")]; $0.apiSocket = .fd(3) },
            { $0.cmdline = String(repeating: "x", count: 5000) },
        ]
        for change in refused {
            var c = VMConfig(kernelPath: "/k")
            change(&c)
            #expect(throws: ConfigError.self) { try c.validate() }
        }
    }
}

extension DiskConfig {
    init(path: String, readonly: Bool, id: String?) {
        self = try! DiskConfig(parsing: "path=\(path)")
        self.readonly = readonly
        self.id = id
    }
}

extension RngConfig {
    init(source: String) {
        self = try! RngConfig(parsing: "src=\(source)")
    }
}
