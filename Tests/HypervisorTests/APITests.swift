import Foundation
import Synchronization
@testable import Hypervisor
import Testing

/// The REST API on a host tiny guest, driven by Debian's curl and by
/// ch-remote, with the VMM under its default seccomp filters.
@Suite("The API socket", .enabled(if: Host.hasKVM, Host.kvmSkipReason), .serialized)
struct APITests {
    static let curlAvailable = access("/usr/bin/curl", X_OK) == 0

    func guestArguments(_ guest: String = "ticker") throws -> [String] {
        ["--kernel", try Guests.path(guest), "--serial", "tty", "--console", "off"]
    }

    /// The system call the named thread of the VMM is in (/proc/…/syscall's first field).
    func deviceSyscall(_ vmm: APIVMM, _ thread: String) -> Int? {
        let pid = vmm.child.processIdentifier
        guard let tid = threadStatus(pid: pid).keys.first(where: { $0.hasPrefix(thread + "/") })?.split(separator: "/").last,
              let text = try? String(contentsOfFile: "/proc/\(pid)/task/\(tid)/syscall", encoding: .utf8) else { return nil }
        return text.split(separator: " ").first.flatMap { Int($0) }
    }

    @Test("every built endpoint, with curl, on a running guest", .enabled(if: curlAvailable))
    func endpoints() throws {
        let vmm = try APIVMM(try guestArguments())
        let ping = vmm.curl("GET", "vmm.ping")
        #expect(ping.status == 200)
        #expect(ping.contentType == "application/json")
        #expect(ping.body.contains("\"version\":\"\(Version.string)\""), "\(ping.body)")

        let info = vmm.curl("GET", "vm.info")
        #expect(info.status == 200)
        #expect(info.contentType == "application/json")
        #expect(info.body.contains("\"state\":\"Running\""), "\(info.body)")
        #expect(info.body.contains("\"boot_vcpus\":1"), "\(info.body)")
        #expect(info.body.contains("\"memory_actual_size\":\(512 << 20)"), "\(info.body)")
        #expect(info.body.contains("\"serial\":{\"mode\":\"Tty\"}"), "\(info.body)")

        // Paused: the guest prints nothing; resumed: it goes on.
        #expect(eventually(10) { ticks(vmm) >= 2 })
        #expect(vmm.curl("PUT", "vm.pause").status == 204)
        #expect(vmm.state == "Paused")
        let frozen = ticks(vmm)
        usleep(1_500_000)
        #expect(ticks(vmm) == frozen, "the guest ran while paused")
        // The device thread is held too (waiting on its lock, not on its queues), until the resume.
        #expect(deviceSyscall(vmm, "virtio-rng") == 202, "the virtio-rng thread was not held (202: futex)")
        // An invalid transition: Cloud Hypervisor's 500, both states named.
        let again = vmm.curl("PUT", "vm.pause")
        #expect(again.status == 500 && again.body.contains("the VM is Paused, it cannot become Paused"), "\(again.body)")
        #expect(vmm.curl("PUT", "vm.resume").status == 204)
        #expect(vmm.state == "Running")
        // 232: epoll_wait, 281: epoll_pwait.
        #expect(eventually(5) { [232, 281].contains(deviceSyscall(vmm, "virtio-rng")) }, "the virtio-rng thread did not go back to its queues")
        #expect(eventually(10) { ticks(vmm) > frozen }, "the guest did not run on after vm.resume")
        #expect(vmm.curl("PUT", "vm.resume").status == 500)
        // vm.boot of a paused VM resumes it, as Cloud Hypervisor's does.
        #expect(vmm.curl("PUT", "vm.pause").status == 204)
        #expect(vmm.curl("PUT", "vm.boot").status == 204)
        #expect(vmm.state == "Running")

        // Shut down, booted again, rebooted: the guest starts over each time.
        #expect(vmm.curl("PUT", "vm.shutdown").status == 204)
        #expect(vmm.state == "Created")
        #expect(vmm.curl("PUT", "vm.shutdown").status == 500)
        let boots = vmm.stdout.components(separatedBy: "tick").count
        #expect(vmm.curl("PUT", "vm.boot").status == 204)
        #expect(vmm.state == "Running")
        #expect(vmm.curl("PUT", "vm.boot").status == 500)
        #expect(vmm.curl("PUT", "vm.reboot").status == 204)
        #expect(vmm.state == "Running")
        #expect(eventually(10) { vmm.stdout.components(separatedBy: "tick").count > boots })

        #expect(vmm.curl("PUT", "vm.delete").status == 204)
        let gone = vmm.curl("GET", "vm.info")
        #expect(gone.status == 404)
        #expect(gone.body == "[\"vm.info: no VM is created (vm.create first)\"]")
        #expect(vmm.curl("PUT", "vm.boot").status == 404)

        #expect(vmm.curl("PUT", "vmm.shutdown").status == 204)
        #expect(eventually(10) { !vmm.child.isRunning })
        #expect(vmm.child.terminationStatus == 0)
        #expect(access(vmm.socket, F_OK) != 0, "the socket file outlived the VMM")
    }

    @Test("vm.power-button raises the GED's power-button event; the guest reads it and powers off", .enabled(if: curlAvailable))
    func powerButton() throws {
        let vmm = try APIVMM(try guestArguments("button"))
        #expect(eventually(10) { vmm.stdout.contains("waiting for the power button") })
        usleep(300_000)
        #expect(!vmm.stdout.contains("pressed"))
        #expect(vmm.curl("PUT", "vm.power-button").status == 204)
        #expect(eventually(10) { !vmm.child.isRunning }, "the guest did not see the button")
        #expect(vmm.child.terminationStatus == 0)
        #expect(vmm.stdout.contains("power button pressed"), "\(vmm.stdout)")
    }

    @Test("vCPU hotplug: vm.resize starts confined vCPU threads and announces them; asked back, the guest's eject ends them", .enabled(if: curlAvailable))
    func vcpuHotplug() throws {
        let vmm = try APIVMM(try guestArguments("cpuhotplug") + ["--cpus", "boot=1,max=4"])
        #expect(eventually(10) { vmm.stdout.contains("cpu hotplug guest ready") })
        func vcpus() -> [String: [String: String]] {
            threadStatus(pid: vmm.child.processIdentifier).filter { $0.key.hasPrefix("vcpu") }
        }
        func names() -> [String] { vcpus().keys.map { String($0.prefix { $0 != "/" }) }.sorted() }
        #expect(names() == ["vcpu0"])
        #expect(vmm.curl("GET", "vm.info").body.contains("\"cpus\":{\"boot_vcpus\":1,\"kvm_hyperv\":false,\"max_vcpus\":4"))

        #expect(vmm.curl("PUT", "vm.resize", body: "{\"desired_vcpus\":3}").status == 204)
        #expect(eventually(10) { vmm.stdout.contains("cpu 1 inserted sta=0x0f") && vmm.stdout.contains("cpu 2 inserted sta=0x0f") },
                "\(vmm.stdout)")
        #expect(names() == ["vcpu0", "vcpu1", "vcpu2"])
        // Each new thread confined as the boot vCPU is: the VMM thread's filter and its own.
        let filters = Set(vcpus().values.map { "\($0["Seccomp"] ?? "?") \($0["Seccomp_filters"] ?? "?")" })
        #expect(filters.count == 1 && filters.first?.hasPrefix("2 ") == true, "\(filters)")
        #expect(vmm.curl("GET", "vm.info").body.contains("\"cpus\":{\"boot_vcpus\":3,\"kvm_hyperv\":false,\"max_vcpus\":4"))
        let over = vmm.curl("PUT", "vm.resize", body: "{\"desired_vcpus\":5}")
        #expect(over.status == 400 && over.body.contains("desired_vcpus 5 is above max_vcpus 4"), "\(over.body)")
        #expect(vmm.curl("PUT", "vm.resize", body: "{\"desired_vcpus\":0}").status == 400)
        #expect(vmm.curl("PUT", "vm.resize", body: "{\"desired_vcpus\":3}").status == 204)

        // Down to one: the guest is asked for vCPUs 2 and 1; its ejects end their threads.
        #expect(vmm.curl("PUT", "vm.resize", body: "{\"desired_vcpus\":1}").status == 204)
        #expect(eventually(10) { vmm.stdout.contains("cpu 1 ejected sta=0x00") && vmm.stdout.contains("cpu 2 ejected sta=0x00") },
                "\(vmm.stdout)")
        #expect(eventually(10) { names() == ["vcpu0"] }, "\(names())")
        #expect(!vmm.stdout.contains("cpu 3"))
        // And up again: KVM kept vCPUs 1 and 2, which get new threads; 3 is new.
        #expect(vmm.curl("PUT", "vm.resize", body: "{\"desired_vcpus\":4}").status == 204)
        #expect(eventually(10) { vmm.stdout.components(separatedBy: "cpu 1 inserted").count == 3 && vmm.stdout.contains("cpu 3 inserted") },
                "\(vmm.stdout)")
        #expect(eventually(10) { names() == ["vcpu0", "vcpu1", "vcpu2", "vcpu3"] }, "\(names())")
        // A pause waits for the threads that run now, and the guest goes on after it.
        #expect(vmm.curl("PUT", "vm.pause").status == 204)
        #expect(vmm.state == "Paused")
        #expect(vmm.curl("PUT", "vm.resume").status == 204)
        #expect(vmm.curl("PUT", "vm.resize", body: "{\"desired_vcpus\":2}").status == 204)
        #expect(eventually(10) { names() == ["vcpu0", "vcpu1"] }, "\(names())")
        #expect(vmm.state == "Running")
        #expect(vmm.shutdown() == 0)
        #expect(!vmm.stderr.contains("error"), "\(vmm.stderr)")
    }

    @Test("memory hotplug: vm.resize desired_ram maps RAM above the old and announces it in a slot; shrinking, odd sizes and too much refused", .enabled(if: curlAvailable))
    func memoryHotplug() throws {
        let vmm = try APIVMM(try guestArguments("memhotplug") + ["--memory", "size=512M,hotplug_size=1G"])
        #expect(eventually(10) { vmm.stdout.contains("memory hotplug guest ready") })
        #expect(vmm.curl("PUT", "vm.resize", body: "{\"desired_ram\":805306368}").status == 204)
        #expect(eventually(10) { vmm.stdout.contains("memory slot 0 inserted sta=0x0f base=0x0000000100000000 size=0x0000000010000000") },
                "\(vmm.stdout)")
        let info = vmm.curl("GET", "vm.info").body
        #expect(info.contains("\"hotplug_size\":1073741824") && info.contains("\"size\":805306368")
                && info.contains("\"memory_actual_size\":805306368"), "\(info)")
        // The rest of the room, in the next slot, right after the first range.
        #expect(vmm.curl("PUT", "vm.resize", body: "{\"desired_ram\":1610612736}").status == 204)
        #expect(eventually(10) { vmm.stdout.contains("memory slot 1 inserted sta=0x0f base=0x0000000110000000 size=0x0000000030000000") },
                "\(vmm.stdout)")
        let refused: [(Int, String)] = [
            (1_744_830_464, "past the VM's 536870912 bytes and hotplug_size 1073741824"),
            (1_073_741_824, "RAM is only ever added"),
            (1_611_661_312, "RAM grows by multiples of 128M"),
            (1_610_612_737, "not a multiple of 4K"),
        ]
        for (ram, message) in refused {
            let answer = vmm.curl("PUT", "vm.resize", body: "{\"desired_ram\":\(ram)}")
            #expect(answer.status == 400 && answer.body.contains(message), "\(ram): \(answer.body)")
        }
        #expect(!vmm.stdout.contains("memory slot 2"))
        #expect(vmm.curl("GET", "vm.info").body.contains("\"memory_actual_size\":1610612736"))
        #expect(vmm.shutdown() == 0)
        #expect(!vmm.stderr.contains("error"), "\(vmm.stderr)")

        let fixed = try APIVMM(try guestArguments())
        let answer = fixed.curl("PUT", "vm.resize", body: "{\"desired_ram\":1073741824}")
        #expect(answer.status == 400 && answer.body.contains("create it with memory.hotplug_size"), "\(answer.body)")
        #expect(fixed.shutdown() == 0)
    }

    @Test("memory shared=on: boot RAM and hot-added RAM are memfds, which vhost-user backends map; a reboot under seccomp makes new ones at the same host address",
          .enabled(if: curlAvailable))
    func sharedMemory() throws {
        let vmm = try APIVMM(try guestArguments("memhotplug") + ["--memory", "size=256M,shared=on,hotplug_size=256M"])
        #expect(eventually(10) { vmm.stdout.contains("memory hotplug guest ready") })
        func memfds() -> [String] {
            let maps = (try? String(contentsOfFile: "/proc/\(vmm.child.processIdentifier)/maps", encoding: .utf8)) ?? ""
            return maps.split(separator: "\n").filter { $0.contains("/memfd:guest-ram") && $0.contains(" rw-s ") }.map(String.init)
        }
        #expect(memfds().count == 1, "\(memfds())")
        let firstBoot = memfds().first?.split(separator: "-").first.map(String.init)
        #expect(vmm.curl("PUT", "vm.resize", body: "{\"desired_ram\":402653184}").status == 204)
        #expect(eventually(10) { vmm.stdout.contains("memory slot 0 inserted") }, "\(vmm.stdout)")
        #expect(memfds().count == 2, "\(memfds())")
        #expect(vmm.curl("GET", "vm.info").body.contains("\"shared\":true"))
        #expect(vmm.curl("PUT", "vm.reboot").status == 204)
        #expect(eventually(10) { vmm.stdout.components(separatedBy: "memory hotplug guest ready").count == 3 }, "\(vmm.stdout)")
        // The old boot's memfds are gone with its VM; the new boot starts with all 384M in one.
        #expect(eventually(5) {
            let ranges = memfds().map { $0.split(separator: " ")[0].split(separator: "-").compactMap { UInt64($0, radix: 16) } }
            return ranges.count == 1 && ranges[0][1] - ranges[0][0] == 384 << 20
        }, "\(memfds())")
        // At the same host address as the first boot's: vhost-user backends keep ring addresses across a reboot.
        #expect(firstBoot != nil && memfds().first?.split(separator: "-").first.map(String.init) == firstBoot, "\(memfds())")
        #expect(vmm.shutdown() == 0)
        #expect(!vmm.stderr.contains("error"), "\(vmm.stderr)")
    }

    @Test("pty consoles: vm.info gives each terminal's path in `file`, as Cloud Hypervisor does", .enabled(if: curlAvailable))
    func ptyPaths() throws {
        let vmm = try APIVMM(["--kernel", try Guests.path("ticker"), "--serial", "pty", "--console", "pty"])
        let info = vmm.curl("GET", "vm.info").body
        #expect(info.contains("\"serial\":{\"file\":\"/dev/pts/") && info.contains("\"mode\":\"Pty\""), "\(info)")
        #expect(info.contains("\"console\":{\"file\":\"/dev/pts/"), "\(info)")
        if FileManager.default.fileExists(atPath: "/usr/lib/python3/dist-packages/yaml") {
            #expect(CHWireFormatTests.openAPIProblems(info, "VmInfo").isEmpty, "\(CHWireFormatTests.openAPIProblems(info, "VmInfo"))")
        }
        #expect(vmm.shutdown() == 0)
    }

    @Test("PCI segment 1: a disk and the console there from the command line, another disk hot-added there and ejected; a segment the VM lacks refused",
          .enabled(if: curlAvailable))
    func segmentHotplug() throws {
        let disks = (0..<2).map { FileManager.default.temporaryDirectory.appendingPathComponent("segment-\(getpid())-\($0).raw").path }
        for disk in disks { FileManager.default.createFile(atPath: disk, contents: Data(count: 1 << 20)) }
        defer { for disk in disks { try? FileManager.default.removeItem(atPath: disk) } }
        let vmm = try APIVMM(["--kernel", try Guests.path("hotplug"), "--serial", "tty", "--console", "null,pci_segment=1",
                              "--platform", "num_pci_segments=2", "--disk", "path=\(disks[0]),id=cold,pci_segment=1"])
        #expect(eventually(10) { vmm.stdout.contains("hotplug guest ready") })
        let info = vmm.curl("GET", "vm.info").body
        // The console on segment 1 too, after the disk.
        #expect(info.contains("\"_virtio-pci-cold\":{\"children\":[\"cold\"],\"id\":\"_virtio-pci-cold\",\"pci_bdf\":\"0001:00:01.0\""), "\(info)")
        #expect(info.contains("\"_virtio-pci-__console\":{\"children\":[\"__console\"],\"id\":\"_virtio-pci-__console\",\"pci_bdf\":\"0001:00:02.0\""),
                "\(info)")
        #expect(info.contains("\"console\":{\"iommu\":false,\"mode\":\"Null\",\"pci_segment\":1}"), "\(info)")
        #expect(info.contains("\"pci_segment\":1"), "\(info)")
        // Segment 1's next free slot, announced on segment 1's registers.
        let added = vmm.curl("PUT", "vm.add-disk", body: "{\"path\":\"\(disks[1])\",\"id\":\"hot\",\"pci_segment\":1}")
        #expect(added.status == 200 && added.body == "{\"bdf\":\"0001:00:03.0\",\"id\":\"hot\"}", "\(added.body)")
        #expect(eventually(10) { vmm.stdout.contains("slot arrived on segment 1") }, "\(vmm.stdout)")
        #expect(!vmm.stdout.contains("slot arrived on segment 0"), "\(vmm.stdout)")
        #expect(vmm.curl("PUT", "vm.remove-device", body: "{\"id\":\"hot\"}").status == 204)
        #expect(eventually(10) { vmm.stdout.contains("slot ejected on segment 1") }, "\(vmm.stdout)")
        #expect(eventually(10) { !vmm.curl("GET", "vm.info").body.contains("\"hot\":{") }, "the ejected disk stayed")
        // The command line's disk too: the guest's eject on segment 1 ends it.
        #expect(vmm.curl("PUT", "vm.remove-device", body: "{\"id\":\"cold\"}").status == 204)
        #expect(eventually(10) { !vmm.curl("GET", "vm.info").body.contains("\"cold\":{") }, "the command line's disk stayed")
        let again = vmm.curl("PUT", "vm.add-disk", body: "{\"path\":\"\(disks[1])\",\"pci_segment\":1}")
        #expect(again.status == 200 && again.body.contains("\"bdf\":\"0001:00:01.0\""), "\(again.body)")
        let missing = vmm.curl("PUT", "vm.add-disk", body: "{\"path\":\"\(disks[0])\",\"pci_segment\":2}")
        #expect(missing.status == 400 && missing.body.contains("no such PCI segment"), "\(missing.body)")
        #expect(vmm.state == "Running")
    }

    @Test("disk hotplug: vm.add-disk into the running VM answers its slot; vm.remove-device asks, the guest's eject ends it", .enabled(if: curlAvailable))
    func diskHotplug() throws {
        let disk = FileManager.default.temporaryDirectory.appendingPathComponent("hotplug-\(getpid()).raw").path
        FileManager.default.createFile(atPath: disk, contents: Data(count: 1 << 20))
        defer { try? FileManager.default.removeItem(atPath: disk) }
        let vmm = try APIVMM(try guestArguments("hotplug"))
        #expect(eventually(10) { vmm.stdout.contains("hotplug guest ready") })
        // Slot 1 is the rng's (console off): the disk takes the next one.
        let added = vmm.curl("PUT", "vm.add-disk", body: "{\"path\":\"\(disk)\",\"id\":\"hot\"}")
        #expect(added.status == 200, "\(added.body)")
        #expect(added.body == "{\"bdf\":\"0000:00:02.0\",\"id\":\"hot\"}", "\(added.body)")
        #expect(eventually(10) { vmm.stdout.contains("slot arrived") }, "\(vmm.stdout)")
        #expect(vmm.curl("GET", "vm.info").body.contains("\"id\":\"hot\""))
        // vm.info's device tree: each device under its transport's node, which has the address.
        let tree = vmm.curl("GET", "vm.info").body
        #expect(tree.contains("\"hot\":{\"children\":[],\"id\":\"hot\",\"parent\":\"_virtio-pci-hot\",\"resources\":[]}")
                && tree.contains("\"_virtio-pci-hot\":{\"children\":[\"hot\"],\"id\":\"_virtio-pci-hot\",\"pci_bdf\":\"0000:00:02.0\"")
                && tree.contains("\"_virtio-pci-__rng\":{\"children\":[\"__rng\"],\"id\":\"_virtio-pci-__rng\",\"pci_bdf\":\"0000:00:01.0\""), "\(tree)")
        let counters = vmm.curl("GET", "vm.counters")
        #expect(counters.status == 200 && counters.body == "{\"hot\":{\"read_bytes\":0,\"read_ops\":0,\"write_bytes\":0,\"write_ops\":0}}",
                "\(counters.body)")
        #expect(vmm.curl("PUT", "vm.add-disk", body: "{\"path\":\"\(disk)\",\"id\":\"hot\"}").status == 409)
        let missing = vmm.curl("PUT", "vm.add-disk", body: "{\"path\":\"/nonexistent.raw\"}")
        #expect(missing.status == 500 && missing.body.contains("/nonexistent.raw': no such file"), "\(missing.body)")

        // A host device for VFIO hotplug is checked as --device checks it (this host has none bound).
        let device = vmm.curl("PUT", "vm.add-device", body: "{\"path\":\"/sys/bus/pci/devices/0000:7f:1f.7/\"}")
        #expect(device.status == 500 && device.body.contains("0000:7f:1f.7"), "\(device.body)")
        #expect(vmm.curl("PUT", "vm.remove-device", body: "{\"id\":\"hot\"}").status == 204)
        #expect(eventually(10) { vmm.stdout.contains("slot ejected") }, "\(vmm.stdout)")
        #expect(eventually(10) { !vmm.curl("GET", "vm.info").body.contains("\"id\":\"hot\"") }, "the ejected disk stayed")
        #expect(!vmm.curl("GET", "vm.info").body.contains("\"hot\":{"), "the ejected disk stayed in the device tree")
        #expect(vmm.curl("PUT", "vm.remove-device", body: "{\"id\":\"hot\"}").status == 404)
        // Its slot is free again, and the image is not locked any more.
        let again = vmm.curl("PUT", "vm.add-disk", body: "{\"path\":\"\(disk)\"}")
        #expect(again.status == 200 && again.body.contains("0000:00:02.0"), "\(again.body)")
        #expect(vmm.state == "Running")
        #expect(vmm.shutdown() == 0)
        #expect(!vmm.stderr.contains("error"), "\(vmm.stderr)")
    }

    @Test("vsock hotplug: vm.add-vsock binds its socket and plugs the device, one per VM; a host client the guest never answers is closed; removal ends the socket",
          .enabled(if: curlAvailable))
    func vsockHotplug() throws {
        let socket = FileManager.default.temporaryDirectory.appendingPathComponent("hotvsock-\(getpid()).sock").path
        let vmm = try APIVMM(try guestArguments("hotplug"))
        #expect(eventually(10) { vmm.stdout.contains("hotplug guest ready") })
        let added = vmm.curl("PUT", "vm.add-vsock", body: "{\"cid\":3,\"socket\":\"\(socket)\"}")
        #expect(added.status == 200 && added.body == "{\"bdf\":\"0000:00:02.0\",\"id\":\"_vsock0\"}", "\(added.body)")
        #expect(eventually(10) { vmm.stdout.contains("slot arrived") }, "\(vmm.stdout)")
        #expect(vmm.curl("GET", "vm.info").body.contains("\"vsock\":{\"cid\":3,\"id\":\"_vsock0\""))
        let second = vmm.curl("PUT", "vm.add-vsock", body: "{\"cid\":4,\"socket\":\"\(socket)2\"}")
        #expect(second.status == 400 && second.body.contains("the VM has a vsock already"), "\(second.body)")
        // No driver answers: after Cloud Hypervisor's 2 s the client's socket closes.
        let client = UnixSocket.connect(socket)
        #expect(client >= 0)
        _ = "CONNECT 1024\n".withCString { write(client, $0, 13) }
        let start = Date()
        #expect(UnixSocket.read(client, 16, 10).isEmpty)
        #expect(Date().timeIntervalSince(start) > 1.5, "closed before the guest had its time")
        close(client)
        #expect(vmm.curl("PUT", "vm.remove-device", body: "{\"id\":\"_vsock0\"}").status == 204)
        #expect(eventually(10) { vmm.stdout.contains("slot ejected") }, "\(vmm.stdout)")
        #expect(eventually(10) { !FileManager.default.fileExists(atPath: socket) }, "the socket outlived its device")
        #expect(eventually(10) { !vmm.curl("GET", "vm.info").body.contains("vsock") })
        // A new one may come in its place, under a new id.
        let again = vmm.curl("PUT", "vm.add-vsock", body: "{\"cid\":5,\"socket\":\"\(socket)\"}")
        #expect(again.status == 200 && again.body.contains("_vsock1"), "\(again.body)")
        #expect(vmm.shutdown() == 0)
        #expect(!FileManager.default.fileExists(atPath: socket))
        #expect(!vmm.stderr.contains("error"), "\(vmm.stderr)")
    }

    @Test("a disk hot-added and removed 1,000 times: the same slot each time, the VMM's descriptors and memory flat")
    func hotplugCycles() throws {
        let disk = FileManager.default.temporaryDirectory.appendingPathComponent("cycles-\(getpid()).raw").path
        _ = FileManager.default.createFile(atPath: disk, contents: Data(count: 1 << 20))
        defer { try? FileManager.default.removeItem(atPath: disk) }
        let vmm = try APIVMM(try guestArguments("hotplug"))
        try vmm.flatOverCycles { client in try client.request("PUT", "vm.add-disk", body: Array("{\"path\":\"\(disk)\"}".utf8)) }
        #expect(vmm.shutdown() == 0, "\(vmm.stderr)")
    }

    @Test("a vsock hot-added and removed 1,000 times under seccomp, a host client connecting each time: the socket comes and goes, descriptors and memory flat")
    func vsockCycles() throws {
        let socket = "/tmp/ch-vsock-cycles-\(getpid()).sock"
        let vmm = try APIVMM(try guestArguments("hotplug") + ["--seccomp", "true"])
        try vmm.flatOverCycles { client in
            let added = try client.request("PUT", "vm.add-vsock", body: Array("{\"cid\":3,\"socket\":\"\(socket)\"}".utf8))
            // A client the guest never answers: its stream and deadline go with the device.
            let fd = UnixSocket.connect(socket)
            if fd >= 0 { _ = "CONNECT 1024\n".withCString { write(fd, $0, 13) }; close(fd) }
            return added
        }
        #expect(!FileManager.default.fileExists(atPath: socket))
        #expect(vmm.shutdown() == 0)
    }

    @Test("device ids: given once, when the configuration is accepted, from one counter, never reused; vm.info, the device tree and vm.counters agree",
          .enabled(if: curlAvailable))
    func deviceIDs() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ids-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let disks = (0..<3).map { dir.appendingPathComponent("d\($0).raw").path }
        for disk in disks { _ = FileManager.default.createFile(atPath: disk, contents: Data(count: 1 << 20)) }
        let vmm = try APIVMM(try guestArguments("hotplug") + ["--disk", "path=\(disks[0])"])
        #expect(eventually(10) { vmm.stdout.contains("hotplug guest ready") })
        #expect(vmm.curl("GET", "vm.info").body.contains("\"id\":\"_disk0\""))
        // A disk of the command line named by nobody no longer leaves its name to the first hot one.
        let added = vmm.curl("PUT", "vm.add-disk", body: "{\"path\":\"\(disks[1])\"}")
        #expect(added.status == 200 && added.body.contains("\"id\":\"_disk1\""), "\(added.body)")
        let info = vmm.curl("GET", "vm.info").body
        #expect(info.contains("\"_disk0\":{") && info.contains("\"_disk1\":{"), "the device tree: \(info)")
        let counters = vmm.curl("GET", "vm.counters").body
        #expect(counters.contains("\"_disk0\":{") && counters.contains("\"_disk1\":{"), "\(counters)")
        // Removed and added again: a new name, never the old one.
        #expect(vmm.curl("PUT", "vm.remove-device", body: "{\"id\":\"_disk1\"}").status == 204)
        #expect(eventually(10) { !vmm.curl("GET", "vm.info").body.contains("\"_disk1\"") })
        let again = vmm.curl("PUT", "vm.add-disk", body: "{\"path\":\"\(disks[2])\"}")
        #expect(again.status == 200 && again.body.contains("\"id\":\"_disk2\""), "\(again.body)")
        // A name the user gives is taken as it is, and the counter steps over it.
        let named = vmm.curl("PUT", "vm.add-disk", body: "{\"path\":\"\(disks[1])\",\"id\":\"_disk3\"}")
        #expect(named.status == 200, "\(named.body)")
        #expect(vmm.shutdown() == 0)

        // vm.create: Cloud Hypervisor's one counter across kinds (disks, then networks, then host devices).
        let api = try APIVMM([])
        let body = Self.createBody.replacingOccurrences(of: "KERNEL", with: try Guests.path("ticker"))
            .replacingOccurrences(of: "\"iommu\":false,\"watchdog\"",
                                  with: "\"disks\":[{\"path\":\"\(disks[0])\"},{\"path\":\"\(disks[1])\",\"id\":\"_disk1\"}],\"iommu\":false,\"watchdog\"")
        #expect(api.curl("PUT", "vm.create", body: body).status == 204)
        let created = api.curl("GET", "vm.info").body
        #expect(created.contains("\"id\":\"_disk0\"") && created.contains("\"id\":\"_disk1\""), "\(created)")
        let file = open("/dev/null", O_RDONLY | O_CLOEXEC)
        defer { close(file) }
        let net = try APIClient(socketPath: api.socket).request("PUT", "vm.add-net", body: Array("{}".utf8), fds: [file])
        #expect(net.status == 204 && api.curl("GET", "vm.info").body.contains("\"id\":\"_net1\""), "\(net.text)")
        #expect(api.shutdown() == 0)
    }

    @Test("a network device the VMM makes a tap for, hot-added and removed 1,000 times under seccomp: its tap, thread and transmit timer go with it, descriptors and memory flat",
          .enabled(if: NetHostTests.canMakeTaps, "needs root and /dev/net/tun"))
    func netCycles() throws {
        let vmm = try APIVMM(try guestArguments("hotplug") + ["--seccomp", "true"], launcher: ["/usr/bin/unshare", "-n", "--"])
        try vmm.flatOverCycles { client in try client.request("PUT", "vm.add-net", body: Array("{\"tap\":\"chcyc0\"}".utf8)) }
        #expect(vmm.shutdown() == 0, "\(vmm.stderr)")
    }

    @Test("network hotplug: a tap handed over with vm.add-net into the running VM, then asked back and closed; one the VMM makes, onto segment 1",
          .enabled(if: curlAvailable && NetHostTests.canMakeTaps, "needs curl, root and /dev/net/tun"))
    func netHotplug() throws {
        let vmm = try APIVMM(try guestArguments("hotplug") + ["--platform", "num_pci_segments=2"],
                             launcher: ["/usr/bin/unshare", "-n", "--"])
        #expect(eventually(10) { vmm.stdout.contains("hotplug guest ready") })
        let pid = vmm.child.processIdentifier
        // In the VMM's network namespace: a tap opened as Kata opens it, sent over the socket.
        let lab = Guests.repository.appendingPathComponent("lab/tests")
        let sent = run("/usr/bin/nsenter", ["--net=/proc/\(pid)/ns/net", "python3", lab.appendingPathComponent("tapfd.py").path,
                                           "chhot0", "10.204.0.1/24", "--", "python3", lab.appendingPathComponent("apisend.py").path,
                                           vmm.socket, "vm.add-net", "{\"mac\":\"12:34:56:78:90:ae\",\"id\":\"hotnet\"}", "{fd}"])
        #expect(sent.stdout == "vm.add-net: {\"bdf\":\"0000:00:02.0\",\"id\":\"hotnet\"} HTTP=200\n", "\(sent.stdout) \(sent.stderr)")
        #expect(eventually(10) { vmm.stdout.contains("slot arrived") }, "\(vmm.stdout)")
        #expect(eventually(5) { threadStatus(pid: pid).keys.contains { $0.hasPrefix("virtio-net0/") } })
        let info = vmm.curl("GET", "vm.info").body
        #expect(info.contains("\"id\":\"hotnet\"") && info.contains("\"mac\":\"12:34:56:78:90:ae\""), "\(info)")
        #expect(vmm.curl("GET", "vm.counters").body.contains("\"hotnet\":{\"rx_bytes\""))
        func tapExists() -> Bool {
            run("/usr/bin/nsenter", ["--net=/proc/\(pid)/ns/net", "ip", "-o", "link", "show", "chhot0"]).status == 0
        }
        #expect(tapExists())
        #expect(vmm.curl("PUT", "vm.remove-device", body: "{\"id\":\"hotnet\"}").status == 204)
        #expect(eventually(10) { vmm.stdout.contains("slot ejected") }, "\(vmm.stdout)")
        // Gone from the VM and its descriptors closed: the tap, which nothing else holds, went with them.
        #expect(eventually(10) { !vmm.curl("GET", "vm.info").body.contains("hotnet") })
        #expect(eventually(10) { !tapExists() }, "the tap's descriptors were kept")
        #expect(!threadStatus(pid: pid).keys.contains { $0.hasPrefix("virtio-net0/") })
        // ch-remote sends add-net's fd= as Cloud Hypervisor's does: the descriptors themselves.
        let remote = VMM.binary.replacingOccurrences(of: "/cloud-hypervisor", with: "/ch-remote")
        let viaRemote = run("/usr/bin/nsenter", ["--net=/proc/\(pid)/ns/net", "python3", lab.appendingPathComponent("tapfd.py").path,
                                                "chhot2", "10.206.0.1/24", "--", remote, "--api-socket", vmm.socket, "add-net",
                                                "fd=[{fd}],mac=12:34:56:78:90:af,id=remote0"])
        #expect(viaRemote.status == 0 && viaRemote.stdout.contains("\"id\":\"remote0\""), "\(viaRemote.stdout) \(viaRemote.stderr)")
        #expect(run("/usr/bin/nsenter", ["--net=/proc/\(pid)/ns/net", "ip", "-o", "link", "show", "chhot2"]).status == 0,
                "the tap did not outlive ch-remote: the VMM did not get it")
        let closed = run(remote, ["--api-socket", vmm.socket, "add-net", "fd=[1000]"])
        #expect(closed.status == 1 && closed.stderr.contains("descriptor 1000 is not open in ch-remote"), "\(closed.stderr)")
        // A tap the VMM makes and configures itself, under its confined thread's filter.
        // … onto PCI segment 1, where the guest is told of it.
        let made = vmm.curl("PUT", "vm.add-net", body: "{\"tap\":\"chhot1\",\"ip\":\"10.205.0.1\",\"mask\":\"255.255.255.0\",\"mtu\":4000,\"pci_segment\":1}")
        #expect(made.status == 200 && made.body == "{\"bdf\":\"0001:00:01.0\",\"id\":\"_net0\"}", "\(made.body)")
        #expect(eventually(10) { vmm.stdout.contains("slot arrived on segment 1") }, "\(vmm.stdout)")
        #expect(vmm.curl("GET", "vm.info").body.contains("\"id\":\"remote0\""))
        let link = run("/usr/bin/nsenter", ["--net=/proc/\(pid)/ns/net", "ip", "-o", "addr", "show", "chhot1"]).stdout
        #expect(link.contains("inet 10.205.0.1/24"), "\(link)")
        #expect(vmm.shutdown() == 0)
        #expect(!vmm.stderr.contains("error"), "\(vmm.stderr)")
    }

    static let createBody = """
        {"cpus":{"boot_vcpus":2,"max_vcpus":2,"kvm_hyperv":false,
                 "topology":{"threads_per_core":1,"cores_per_die":2,"dies_per_package":1,"packages":1}},
         "memory":{"size":268435456,"shared":false,"hugepages":false,"hotplug_method":"Acpi","thp":true},
         "payload":{"kernel":"KERNEL","cmdline":"console=ttyS0"},
         "serial":{"mode":"Tty"},"console":{"mode":"Off"},"rng":{"src":"/dev/urandom","iommu":false},
         "iommu":false,"watchdog":false,"pvpanic":false,"vsock":null,"fs":null,
         "platform":{"num_pci_segments":2,"iommu_segments":[]},
         "a_field_from_a_newer_cloud_hypervisor":{"x":1}}
        """

    @Test("vm.info's device tree is Cloud Hypervisor's: each virtio device under its _virtio-pci node, which has the address and the BARs; the IOAPIC and COM1; absent fields omitted",
          .enabled(if: curlAvailable))
    func deviceTree() throws {
        let disk = FileManager.default.temporaryDirectory.appendingPathComponent("tree-\(getpid()).raw").path
        _ = FileManager.default.createFile(atPath: disk, contents: Data(count: 1 << 20))
        defer { unlink(disk) }
        let vmm = try APIVMM(try guestArguments() + ["--disk", "path=\(disk)"])
        #expect(eventually(10) { ticks(vmm) >= 1 })
        let body = vmm.curl("GET", "vm.info").body
        #expect(!body.contains("null"), "a null field: \(body)")
        let info = try #require(try JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any])
        let tree = try #require(info["device_tree"] as? [String: [String: Any]], "\(body)")
        #expect(Set(tree.keys) == ["__ioapic", "__serial", "_disk0", "_virtio-pci-_disk0", "__rng", "_virtio-pci-__rng"], "\(tree.keys)")
        var bases: [Int] = []
        for device in ["_disk0", "__rng"] {
            let node = try #require(tree[device]), transport = try #require(tree["_virtio-pci-" + device])
            #expect(node["id"] as? String == device && node["parent"] as? String == "_virtio-pci-" + device)
            #expect(node["pci_bdf"] == nil && (node["resources"] as? [Any])?.isEmpty == true && (node["children"] as? [Any])?.isEmpty == true)
            #expect(transport["parent"] == nil && transport["children"] as? [String] == [device])
            let bdf = try #require(transport["pci_bdf"] as? String)
            #expect(bdf.hasPrefix("0000:00:") && bdf.hasSuffix(".0"), "\(bdf)")
            let bars = try #require(transport["resources"] as? [[String: [String: Any]]])
            #expect(!bars.isEmpty, "\(device): no BARs")
            for resource in bars {
                let bar = try #require(resource["PciBar"], "\(resource)")
                let base = try #require(bar["base"] as? Int), size = try #require(bar["size"] as? Int)
                #expect(["Io", "Mmio32", "Mmio64"].contains(bar["type_"] as? String) && bar["prefetchable"] is Bool && bar["index"] is Int)
                // Where firmware would put it: naturally aligned, not at 0, 64-bit ones above 4 GiB.
                #expect(base != 0 && size > 0 && size & (size - 1) == 0 && base % size == 0, "\(bar)")
                #expect(bar["type_"] as? String != "Mmio64" || base >= 1 << 32, "\(bar)")
                bases.append(base)
            }
        }
        #expect(Set(bases).count == bases.count, "two BARs at one place: \(bases)")
        #expect(tree["__ioapic"]?["resources"] as? [Any] != nil && tree["__serial"]?["pci_bdf"] == nil)
        #expect(vmm.shutdown() == 0)
    }

    @Test("every thread the VMM starts (the API's, vCPUs, devices) blocks every signal: SIGTERM and the rest reach only the VMM thread's signalfd")
    func threadSignals() throws {
        let vmm = try APIVMM(try guestArguments())
        #expect(eventually(10) { ticks(vmm) >= 1 })
        let pid = vmm.child.processIdentifier
        let started = threadStatus(pid: pid).filter { !$0.key.hasSuffix("/\(pid)") }
        #expect(Set(started.keys.map { $0.split(separator: "/")[0] }).isSuperset(of: ["api", "vcpu0", "virtio-rng"]), "\(started.keys)")
        for (thread, status) in started {
            let blocked = UInt64(status["SigBlk"] ?? "", radix: 16) ?? 0
            // SIGHUP, SIGINT, SIGUSR1, SIGALRM, SIGTERM, SIGCHLD, SIGWINCH: bit n-1 each.
            for signal in [SIGHUP, SIGINT, SIGUSR1, SIGALRM, SIGTERM, SIGCHLD, SIGWINCH] {
                #expect(blocked >> UInt64(signal - 1) & 1 == 1, "\(thread) takes signal \(signal): SigBlk \(status["SigBlk"] ?? "?")")
            }
        }
        #expect(vmm.shutdown() == 0)
    }

    @Test("API-only launch: nothing runs until vm.create and vm.boot", .enabled(if: curlAvailable))
    func apiOnlyLaunch() throws {
        let vmm = try APIVMM([])
        #expect(vmm.curl("GET", "vm.info").status == 404)
        #expect(vmm.curl("PUT", "vm.boot").status == 404)
        let body = Self.createBody.replacingOccurrences(of: "KERNEL", with: try Guests.path("ticker"))
        let created = vmm.curl("PUT", "vm.create", body: body)
        #expect(created.status == 204, "\(created.body)")
        #expect(vmm.state == "Created")
        #expect(!vmm.curl("GET", "vm.info").body.contains("device_tree"), "a tree before the VM is built")
        #expect(vmm.curl("PUT", "vm.create", body: body).status == 500)
        #expect(ticks(vmm) == 0)
        #expect(vmm.curl("PUT", "vm.boot").status == 204)
        #expect(vmm.state == "Running")
        #expect(eventually(10) { ticks(vmm) >= 1 })
        let info = vmm.curl("GET", "vm.info").body
        #expect(info.contains("\"boot_vcpus\":2") && info.contains("\"size\":268435456") && info.contains("\"cmdline\":\"console=ttyS0\""), "\(info)")
        #expect(info.contains("\"platform\":{\"iommu_address_width_bits\":64,\"num_pci_segments\":2}"), "\(info)")
        #expect(vmm.shutdown() == 0)
    }

    @Test("before boot, Kata's way: add-disk, add-net with its tap over SCM_RIGHTS, remove-device, resize to what it has")
    func addBeforeBoot() throws {
        let vmm = try APIVMM([])
        let kernel = try Guests.path("ticker")
        #expect(vmm.curl("PUT", "vm.add-disk", body: "{\"path\":\"/a.raw\"}").status == 404)
        let body = Self.createBody.replacingOccurrences(of: "KERNEL", with: kernel)
        #expect(vmm.curl("PUT", "vm.create", body: body).status == 204)
        let disk = FileManager.default.temporaryDirectory.appendingPathComponent("api-disk-\(getpid()).raw").path
        FileManager.default.createFile(atPath: disk, contents: Data(count: 1 << 20))
        defer { try? FileManager.default.removeItem(atPath: disk) }
        #expect(vmm.curl("PUT", "vm.add-disk", body: "{\"path\":\"\(disk)\"}").status == 204)
        #expect(vmm.curl("PUT", "vm.add-disk", body: "{\"path\":\"\(disk)\",\"readonly\":true,\"id\":\"_disk0\"}").status == 409)
        #expect(vmm.curl("PUT", "vm.add-disk", body: "{\"path\":\"\(disk)\",\"queue_size\":100}").body.contains("must be a power of two"))
        #expect(vmm.curl("GET", "vm.info").body.contains("\"id\":\"_disk0\""))

        // A descriptor sent with vm.add-net is kept for the boot; removing
        // the net closes it; numbers in the body are never taken.
        let pid = vmm.child.processIdentifier
        func count() -> Int { (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd").count) ?? -1 }
        let client = try APIClient(socketPath: vmm.socket)
        #expect(try client.request("GET", "vmm.ping").status == 200) // accepted: its connection counts
        let before = count()
        let file = open("/dev/null", O_RDONLY | O_CLOEXEC)
        defer { close(file) }
        let added = try client.request("PUT", "vm.add-net", body: Array("{\"mac\":\"12:34:56:78:9a:bc\"}".utf8), fds: [file])
        #expect(added.status == 204, "\(added.text)")
        #expect(eventually(5) { count() == before + 1 }, "\(count()) vs \(before)")
        let info = vmm.curl("GET", "vm.info").body
        // One counter for every kind, as Cloud Hypervisor's: the disk took 0.
        #expect(info.contains("\"id\":\"_net1\"") && info.contains("\"mac\":\"12:34:56:78:9a:bc\""), "\(info)")
        #expect(try client.request("PUT", "vm.remove-device", body: Array("{\"id\":\"_net1\"}".utf8)).status == 204)
        #expect(eventually(5) { count() == before }, "the handed-over descriptor outlived its net")
        let bodyFDs = try client.request("PUT", "vm.add-net", body: Array("{\"fds\":[0,1],\"num_queues\":4,\"id\":\"n\"}".utf8))
        #expect(bodyFDs.status == 204, "\(bodyFDs.text)")
        let taken = vmm.curl("GET", "vm.info").body
        #expect(taken.contains("\"id\":\"n\"") && !taken.contains("\"fds\":[0,1]"), "\(taken)")
        #expect(try client.request("PUT", "vm.remove-device", body: Array("{\"id\":\"n\"}".utf8)).status == 204)
        #expect(try client.request("PUT", "vm.remove-device", body: Array("{\"id\":\"nothing\"}".utf8)).status == 404)

        #expect(vmm.curl("PUT", "vm.resize", body: "{\"desired_vcpus\":2}").status == 204)
        let balloon = vmm.curl("PUT", "vm.resize", body: "{\"desired_vcpus\":2,\"desired_balloon\":1048576}")
        #expect(balloon.status == 400 && balloon.body.contains("desired_balloon (the balloon device) is not supported yet"), "\(balloon.body)")
        // Before boot, the count to boot with (at most max_vcpus).
        let grow = vmm.curl("PUT", "vm.resize", body: "{\"desired_vcpus\":4}")
        #expect(grow.status == 400 && grow.body.contains("above max_vcpus 2"), "\(grow.body)")
        #expect(vmm.curl("PUT", "vm.boot").status == 204)
        // Hotplug of the image the VM already writes: its lock says no.
        let hot = vmm.curl("PUT", "vm.add-disk", body: "{\"path\":\"\(disk)\"}")
        #expect(hot.status == 500 && hot.body.contains("is already one of this VM's disks"), "\(hot.body)")
        let net = try client.request("PUT", "vm.add-net", body: Array("{\"mac\":\"12:34:56:78:9a:bd\"}".utf8), fds: [file])
        // Network hotplug checks what it is given: this descriptor is no tap.
        #expect(net.status == 500 && net.text.contains("is not a tap opened with IFF_TAP"), "\(net.text)")
        #expect(vmm.shutdown() == 0)
    }

    @Test("vm.create refuses what cannot run, with the command line's words and a 400", .enabled(if: curlAvailable))
    func invalidConfigs() throws {
        let vmm = try APIVMM([])
        let kernel = try Guests.path("ticker")
        let cases: [(String, String)] = [
            ("{\"payload\":{\"kernel\":\"\(kernel)\"},\"vsock\":{\"cid\":2,\"socket\":\"/tmp/v.sock\"}}", "--vsock cid: invalid value '2': a special VSOCK CID"),
            ("{\"payload\":{\"kernel\":\"\(kernel)\"},\"fs\":[{\"tag\":\"a\",\"socket\":\"/tmp/fs\"}]}", "--fs tag=a: a vhost-user backend maps guest RAM: give --memory shared=on"),
            ("{\"payload\":{\"kernel\":\"\(kernel)\"},\"memory\":{\"size\":1000}}", "--memory size: invalid value '1000'"),
            ("{\"payload\":{\"kernel\":\"\(kernel)\"},\"disks\":[{\"path\":\"/a.raw\",\"bogus\":1,\"id\":\"x\"},{\"path\":\"/b.raw\",\"id\":\"x\"}]}",
             "--disk: id 'x' is given to more than one device"),
            ("{\"payload\":{\"kernel\":\"\(kernel)\"},\"platform\":{\"num_pci_segments\":97}}", "--platform num_pci_segments: invalid value '97'"),
            ("{\"payload\":{\"kernel\":\"\(kernel)\"},\"platform\":{\"num_pci_segments\":2,\"iommu_segments\":[2]}}",
             "--platform iommu_segments: invalid value '2': no such PCI segment"),
            ("{\"payload\":{\"firmware\":\"/CLOUDHV.fd\"}}", "payload.firmware is not supported yet"),
            ("{\"payload\":{\"kernel\":\"\(kernel)\"},\"disks\":[{\"path\":\"/a.qcow2\",\"image_type\":\"Qcow2\"}]}",
             "--disk image_type=qcow2 (only raw images for now) is not supported yet"),
            ("{\"payload\":{\"kernel\":\"\(kernel)\"},\"cpus\":{\"boot_vcpus\":2,\"max_vcpus\":2,\"topology\":{\"threads_per_core\":2,\"cores_per_die\":1,\"dies_per_package\":1,\"packages\":1}}}",
             "--cpus topology=2:1:1:1 (only 1:2:1:1) is not supported yet"),
            ("{\"payload\":{\"kernel\":\"\(kernel)\"},\"serial\":{\"mode\":\"Tty\",\"iommu\":true}}", "the serial port is no PCI device"),
            ("{\"cpus\":{\"boot_vcpus\":1}}", "payload is required"),
            ("{\"payload\":", "not a JSON object"),
            ("[1,2]", "not a JSON object"),
        ]
        for (body, message) in cases {
            let answer = vmm.curl("PUT", "vm.create", body: body)
            #expect(answer.status == 400, "\(body): \(answer.status) \(answer.body)")
            #expect(answer.body.contains(message), "\(body): \(answer.body)")
            #expect(answer.body.hasPrefix("[\""), "an error body is a list of messages: \(answer.body)")
        }
        #expect(vmm.curl("GET", "vm.info").status == 404, "a refused vm.create created something")
        // A file the VM cannot open is found at boot, and the VMM serves on.
        #expect(vmm.curl("PUT", "vm.create", body: "{\"payload\":{\"kernel\":\"/nonexistent/vmlinux\"}}").status == 204)
        let boot = vmm.curl("PUT", "vm.boot")
        #expect(boot.status == 500)
        #expect(boot.body.contains("cannot read '/nonexistent/vmlinux'"), "\(boot.body)")
        #expect(vmm.curl("GET", "vmm.ping").status == 200)
        #expect(vmm.shutdown() == 0)
    }

    @Test("bad requests get their status and an error body; the guest and other clients are unaffected")
    func badRequests() throws {
        let vmm = try APIVMM(try guestArguments())
        func request(_ text: String) -> [UInt8] { Array(text.utf8) }
        let cases: [([UInt8], String)] = [
            (request("PUT /api/v1/vm.create HTTP/1.1\r\nContent-Length: 9\r\n\r\n{not json"), "HTTP/1.1 400 "),
            (request("GET /api/v1/vm.frobnicate HTTP/1.1\r\n\r\n"), "HTTP/1.1 404 "),
            (request("GET /elsewhere HTTP/1.1\r\n\r\n"), "HTTP/1.1 404 "),
            (request("GET /api/v1/vm.pause HTTP/1.1\r\n\r\n"), "HTTP/1.1 405 "),
            (request("DELETE /api/v1/vm.info HTTP/1.1\r\n\r\n"), "HTTP/1.1 405 "),
            (request("PUT /api/v1/vm.create HTTP/1.1\r\nContent-Length: 99999999\r\n\r\n"), "HTTP/1.1 413 "),
            (request("GET /api/v1/vm.info HTTP/1.1\r\nX: " + String(repeating: "a", count: 20000) + "\r\n\r\n"), "HTTP/1.1 431 "),
            (request("PUT /api/v1/vm.create HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"), "HTTP/1.1 501 "),
            (request("GET /api/v1/vmm.ping HTTP/2.0\r\n\r\n"), "HTTP/1.1 505 "),
            (request("HELLO\r\n\r\n"), "HTTP/1.1 400 "),
            (request("GET /api/v1/vm.info HTTP/1.1\r\nContent-Length: -1\r\n\r\n"), "HTTP/1.1 400 "),
            (request("PUT /api/v1/vm.add-device HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}"), "HTTP/1.1 400 "),
            (request("PUT /api/v1/vm.add-vsock HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}"), "HTTP/1.1 400 "),
            ([0xff, 0xfe, 0x00, 0x0d, 0x0a, 0x0d, 0x0a], "HTTP/1.1 400 "),
        ]
        for (bytes, status) in cases {
            let answer = vmm.raw(bytes)
            #expect(answer.hasPrefix(status), "\(String(decoding: bytes.prefix(60), as: UTF8.self)): \(answer.prefix(200))")
            #expect(answer.contains("Content-Type: application/json\r\n"), "\(answer.prefix(200))")
            #expect(answer.contains("\r\n\r\n[\""), "an error body is a list of messages: \(answer.prefix(300))")
        }

        // Keep-alive: several requests on one connection, answered in order.
        let pipelined = vmm.raw(request("GET /api/v1/vmm.ping HTTP/1.1\r\n\r\nGET /api/v1/vm.info HTTP/1.1\r\n\r\nPUT /api/v1/vm.pause HTTP/1.1\r\nContent-Length: 0\r\n\r\nPUT /api/v1/vm.resume HTTP/1.1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"))
        #expect(pipelined.components(separatedBy: "HTTP/1.1 200 \r\n").count == 3, "\(pipelined)")
        #expect(pipelined.components(separatedBy: "HTTP/1.1 204 \r\n").count == 3, "\(pipelined)")

        // Clients that send half a request and wait, and more clients than
        // the server keeps: the ones that finish their requests are served.
        var idle: [Int32] = []
        for _ in 0..<40 {
            let fd = APIVMM.connect(vmm.socket)
            _ = "GET /api/v1/vm.info HTTP/1.1\r\nHost: x".withCString { send(fd, $0, strlen($0), Int32(MSG_NOSIGNAL)) }
            idle.append(fd)
        }
        defer { idle.forEach { close($0) } }
        let results = Mutex<[Int]>([])
        DispatchQueue.concurrentPerform(iterations: 24) { _ in
            let status = vmm.curl("GET", "vmm.ping").status
            results.withLock { $0.append(status) }
        }
        #expect(results.withLock { $0 } == Array(repeating: 200, count: 24))

        // The guest ran on through all of it.
        let before = ticks(vmm)
        #expect(eventually(10) { ticks(vmm) > before })
        #expect(vmm.state == "Running")
        #expect(vmm.shutdown() == 0)
    }

    @Test("descriptors sent with a request are not kept")
    func descriptorsClosed() throws {
        let vmm = try APIVMM(try guestArguments())
        let pid = vmm.child.processIdentifier
        func count() -> Int { (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd").count) ?? -1 }
        // The readiness ping's connection closes on its own time: counted once it has.
        var before = count()
        _ = eventually(2) {
            usleep(100_000)
            let now = count()
            defer { before = now }
            return now == before
        }
        let client = try APIClient(socketPath: vmm.socket)
        let file = open("/dev/null", O_RDONLY | O_CLOEXEC)
        defer { close(file) }
        for _ in 0..<5 {
            let answer = try client.request("GET", "vmm.ping", fds: [file, file, file])
            #expect(answer.status == 200)
        }
        let tooMany = try APIClient(socketPath: vmm.socket)
        let refused = try tooMany.request("GET", "vmm.ping", fds: Array(repeating: file, count: 20))
        #expect(refused.status == 400)
        // The first client stays connected; the refused one was closed.
        #expect(eventually(5) { count() == before + 1 }, "one connection and nothing else: \(count()) vs \(before)")
        #expect(vmm.shutdown() == 0)
    }

    @Test("the socket: owner-only, a stale file replaced, a live one refused, fd= handed over")
    func socketFile() throws {
        let vmm = try APIVMM(try guestArguments())
        var status = stat()
        #expect(lstat(vmm.socket, &status) == 0)
        #expect(status.st_mode & 0o777 == 0o600, "mode \(String(status.st_mode & 0o777, radix: 8))")

        // A second VMM on the same path: refused, the first one untouched.
        let second = runVMM(["--api-socket", "path=\(vmm.socket)"] + (try guestArguments()), timeout: 10)
        #expect(second.status == 1)
        #expect(second.stderr == "cloud-hypervisor: error: --api-socket: \(vmm.socket) is in use by a live process: stop it or choose another path\n")
        #expect(vmm.curl("GET", "vmm.ping").status == 200)
        kill(vmm.child.processIdentifier, SIGKILL)
        vmm.child.waitUntilExit()

        // Its file is stale now: the next VMM takes the path over.
        #expect(access(vmm.socket, F_OK) == 0)
        let next = try APIVMM(try guestArguments(), socketPath: vmm.socket)
        #expect(next.curl("GET", "vmm.ping").status == 200)
        #expect(next.shutdown() == 0)

        let notSocket = FileManager.default.temporaryDirectory.appendingPathComponent("not-a-socket-\(getpid())").path
        FileManager.default.createFile(atPath: notSocket, contents: Data("keep me".utf8))
        defer { try? FileManager.default.removeItem(atPath: notSocket) }
        let refused = runVMM(["--api-socket", notSocket] + (try guestArguments()), timeout: 10)
        #expect(refused.status == 1)
        #expect(refused.stderr.contains("exists and is not a socket"), "\(refused.stderr)")
        #expect((try? String(contentsOfFile: notSocket, encoding: .utf8)) == "keep me")
    }

    @Test("--api-socket fd=: a socket the parent bound", .enabled(if: curlAvailable))
    func socketFD() throws {
        let kernel = try Guests.path("ticker")
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("apifd-\(getpid())")
        try? FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("api.sock").path
        // The parent binds, passes the descriptor, and the VMM serves on it.
        let script = """
            import os, socket, sys
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.bind(sys.argv[1]); s.listen(4)
            os.set_inheritable(s.fileno(), True)
            os.execv(sys.argv[2], [sys.argv[2], "--api-socket", "fd=%d" % s.fileno()] + sys.argv[3:])
            """
        let result = run("/usr/bin/python3", ["-c", script, path, VMM.binary, "--kernel", kernel, "--serial", "tty", "--console", "off"],
                         timeout: 30) { child, _ in
            let served = eventually(10) {
                run("/usr/bin/curl", ["-s", "--unix-socket", path, "http://localhost/api/v1/vmm.ping"], timeout: 5).stdout.contains("version")
            }
            #expect(served)
            _ = run("/usr/bin/curl", ["-s", "-X", "PUT", "--unix-socket", path, "http://localhost/api/v1/vmm.shutdown"], timeout: 5)
        }
        #expect(result.status == 0, "\(result.stderr)")
        #expect(!result.timedOut)

        let pipeResult = run("/usr/bin/python3", ["-c", "import os,sys; r,w=os.pipe(); os.set_inheritable(r,True); os.execv(sys.argv[1],[sys.argv[1],'--api-socket','fd=%d'%r,'--kernel',sys.argv[2]])",
                                                  VMM.binary, kernel], timeout: 10)
        #expect(pipeResult.status == 1)
        #expect(pipeResult.stderr.contains("is not an open stream socket"), "\(pipeResult.stderr)")
    }

    @Test("ch-remote: Cloud Hypervisor's subcommands, one line and exit 1 on error")
    func chRemote() throws {
        let vmm = try APIVMM([])
        let remote = VMM.binary.replacingOccurrences(of: "/cloud-hypervisor", with: "/ch-remote")
        func chRemote(_ arguments: [String], input: String? = nil) -> RunResult {
            run(remote, ["--api-socket", vmm.socket] + arguments, timeout: 15, input: input)
        }
        let ping = chRemote(["ping"])
        #expect(ping.status == 0)
        #expect(ping.stdout.contains("\"version\""), "\(ping.stdout)")
        let missing = chRemote(["info"])
        #expect(missing.status == 1)
        #expect(missing.stderr == "ch-remote: error: the VMM answered 404: vm.info: no VM is created (vm.create first)\n")

        let config = FileManager.default.temporaryDirectory.appendingPathComponent("vmconfig-\(getpid()).json").path
        defer { try? FileManager.default.removeItem(atPath: config) }
        try Self.createBody.replacingOccurrences(of: "KERNEL", with: try Guests.path("ticker")).write(toFile: config, atomically: true, encoding: .utf8)
        #expect(chRemote(["create", config]).status == 0)
        #expect(chRemote(["boot"]).status == 0)
        #expect(chRemote(["info"]).stdout.contains("\"state\":\"Running\""))
        #expect(chRemote(["pause"]).status == 0)
        #expect(vmm.state == "Paused")
        #expect(chRemote(["resume"]).status == 0)
        #expect(chRemote(["reboot"]).status == 0)
        #expect(chRemote(["shutdown"]).status == 0)
        #expect(vmm.state == "Created")
        #expect(chRemote(["delete"]).status == 0)
        #expect(chRemote(["create", "-"], input: try String(contentsOfFile: config, encoding: .utf8)).status == 0)
        #expect(vmm.state == "Created")

        #expect(chRemote(["delete"]).status == 0)
        #expect(chRemote(["create"], input: try String(contentsOfFile: config, encoding: .utf8)).status == 0, "create reads standard input by default")

        let errors: [([String], String)] = [
            (["add-disk", "path=/a.raw,bogus=1"], "ch-remote: error: --disk: unknown key 'bogus'"),
            (["resize-disk", "--disk", "_disk0", "--size", "2M"], "ch-remote: error: the VMM answered 400: vm.resize-disk is not supported yet"),
            (["resize-zone", "--id", "mem0", "--size", "1G"], "ch-remote: error: the VMM answered 400: vm.resize-zone is not supported yet"),
            (["resize-disk", "--disk", "_disk0", "--size", "lots"], "ch-remote: error: resize-disk --size: invalid value 'lots'"),
            (["snapshot", "file:///tmp/snap"], "ch-remote: error: the VMM answered 500: vm.snapshot: the VM is not running (vm.boot it first)"),
            (["coredump", "/tmp/core"], "ch-remote: error: the VMM answered 400: vm.coredump is not supported yet"),
            (["snapshot"], "ch-remote: error: vm.snapshot takes one argument: <destination_url>"),
            (["restore", "source_url=file:///tmp/snap,prefault=on"], "ch-remote: error: the VMM answered 500: vm.restore: a VM is already created (vm.delete it first)"),
            (["send-migration", "destination_url=unix:/tmp/m"], "ch-remote: error: the VMM answered 500: vm.send-migration: the VM is not running (vm.boot it first)"),
            (["receive-migration", "receiver_url=unix:/tmp/m"], "ch-remote: error: the VMM answered 500: vm.receive-migration: a VM is already created (vm.delete it first)"),
            (["nmi"], "ch-remote: error: the VMM answered 400: vm.nmi is not supported yet"),
            (["add-vsock", "cid=2,socket=/tmp/v.sock"], "ch-remote: error: --vsock cid: invalid value '2': a special VSOCK CID"),
            (["counters"], "ch-remote: error: the VMM answered 500: vm.counters: the VM is not running (vm.boot it first)"),
            (["resize", "--cpus", "zero"], "ch-remote: error: resize --cpus: invalid value 'zero'"),
            (["create", "/nonexistent.json"], "ch-remote: error: cannot read '/nonexistent.json'"),
            (["frobnicate"], "ch-remote: error: unknown subcommand 'frobnicate'"),
            (["boot", "now"], "ch-remote: error: vm.boot takes no arguments"),
        ]
        for (arguments, message) in errors {
            let r = chRemote(arguments)
            #expect(r.status == 1, "\(arguments)")
            #expect(r.stderr.hasPrefix(message), "\(arguments): \(r.stderr)")
            #expect(r.stderr.filter { $0 == "\n" }.count == 1, "one line: \(r.stderr)")
        }
        #expect(chRemote(["shutdown-vmm"]).status == 0)
        #expect(eventually(10) { !vmm.child.isRunning })
        let gone = chRemote(["ping"])
        #expect(gone.status == 1)
        #expect(gone.stderr.contains("cannot connect to the API socket"), "\(gone.stderr)")
    }
}

@Suite("HTTP framing")
struct HTTPFramingTests {
    @Test("an answer with a negative Content-Length is refused, not sliced (found by fuzz/api.swift)")
    func negativeAnswerLength() {
        var answer = Array("HTTP/1.1 200 \r\nContent-Length: -108\r\n\r\n{}".utf8)
        #expect(throws: APIClient.Failure.self) { try APIClient.parse(&answer) }
        var fine = Array("HTTP/1.1 100 \r\n\r\nHTTP/1.1 200 \r\nContent-Length: 2\r\n\r\n{}".utf8)
        #expect((try? APIClient.parse(&fine))?.status == 200)
    }

    @Test("ch-remote reads answers by Cloud Hypervisor's client rules: a reason phrase or another spelling of Content-Length fails there, so here")
    func clientRules() throws {
        var reason = Array("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}".utf8)
        #expect(throws: APIClient.Failure.self) { try APIClient.parse(&reason) }
        // Another spelling is no length to that client: the answer ends with its head.
        var lower = Array("HTTP/1.1 200 \r\ncontent-length: 2\r\n\r\n{}".utf8)
        #expect(try APIClient.parse(&lower)?.body == [])
        var spaced = Array("HTTP/1.1 204\r\n\r\n".utf8)
        #expect(try APIClient.parse(&spaced)?.status == 204)
        var ours = HTTPResponse.error(400, "no").serialized()
        let parsed = try APIClient.parse(&ours)
        #expect(parsed?.status == 400 && parsed?.text == "[\"no\"]" && ours.isEmpty)
    }

    @Test("requests: pipelined ones one at a time, bad lengths and versions refused")
    func requests() {
        let two = Array("GET /api/v1/vmm.ping HTTP/1.1\r\n\r\nPUT /api/v1/vm.boot HTTP/1.1\r\nContent-Length: 0\r\n\r\n".utf8)
        guard case .complete(let first, let consumed) = HTTPRequest.parse(two) else { Issue.record("not parsed"); return }
        #expect(first.method == "GET" && first.path == "/api/v1/vmm.ping" && first.keepAlive)
        guard case .complete(let second, _) = HTTPRequest.parse(Array(two[consumed...])) else { Issue.record("second"); return }
        #expect(second.method == "PUT" && second.path == "/api/v1/vm.boot")
        #expect(HTTPRequest.parse(Array("PUT /x HTTP/1.1\r\nContent-Length: -1\r\n\r\n".utf8)) == .failed(status: 400, reason: "invalid Content-Length '-1'"))
        #expect(HTTPRequest.parse(Array("PUT /x HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n".utf8)) == .failed(status: 400, reason: "invalid Content-Length '6'"))
        #expect(HTTPRequest.parse(Array("PUT /x HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n".utf8))
                == .incomplete(headersDone: true, expectsContinue: true))
        #expect(HTTPRequest.parse(Array("GET /x HTTP/1.0\r\n\r\n".utf8)).isComplete(keepAlive: false))
    }
}

extension HTTPRequest.Parse {
    func isComplete(keepAlive: Bool) -> Bool {
        if case .complete(let request, _) = self { return request.keepAlive == keepAlive }
        return false
    }
}
