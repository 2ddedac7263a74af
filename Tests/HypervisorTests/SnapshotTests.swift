import CVMMCore
import Foundation
import Testing

@testable import Hypervisor

/// The counter guest's lines: (RAM count, register count), in order.
private func counts(_ output: String) -> [(ram: Int, register: Int)] {
    output.split(separator: "\n").compactMap { line in
        guard let n = line.range(of: "n="), let r = line.range(of: " r=") else { return nil }
        let ram = Int(line[n.upperBound..<r.lowerBound], radix: 16)
        let register = Int(line[r.upperBound...].prefix(8), radix: 16)
        guard let ram, let register, line[r.upperBound...].count >= 8 else { return nil }
        return (ram, register)
    }
}

private func snapshotDirectory() throws -> String {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("snap-\(UUID().uuidString.prefix(8))").path
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    return dir
}

@Suite("Snapshot and restore", .serialized)
struct SnapshotTests {
    let guest = { () throws -> [String] in
        ["--kernel", try Guests.path("counter"), "--serial", "tty", "--console", "off", "--memory", "size=128M", "--cpus", "boot=2"]
    }

    @Test("vm.snapshot of a paused VM; a new VMM restores it paused, and vm.resume counts on from where it was, in RAM and in a register")
    func snapshotAndRestore() throws {
        let dir = try snapshotDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let source = try APIVMM(try guest())
        #expect(eventually(10) { counts(source.stdout).count >= 3 }, "\(source.stdout.suffix(300))")
        #expect(source.curl("PUT", "vm.snapshot", body: "{\"destination_url\":\"file://\(dir)\"}").status == 500,
                "a running VM is not snapshotted")
        #expect(source.curl("PUT", "vm.pause").status == 204)
        let saved = try #require(counts(source.stdout).last)
        let answer = source.curl("PUT", "vm.snapshot", body: "{\"destination_url\":\"file://\(dir)\"}")
        #expect(answer.status == 204, "\(answer.body)")
        // Guest RAM is sparse: the pages the guest never touched take no room.
        var st = stat()
        #expect(stat(dir + "/memory", &st) == 0 && st.st_size == 128 << 20)
        #expect(Int(st.st_blocks) * 512 < 16 << 20, "the memory file holds \(st.st_blocks * 512) bytes for a guest that touched little")
        for name in ["config.json", "state"] { #expect(FileManager.default.fileExists(atPath: dir + "/" + name), "\(name)") }
        kill(source.child.processIdentifier, SIGKILL)

        let restored = try APIVMM(["--restore", "source_url=file://\(dir)"])
        #expect(restored.state == "Paused")
        usleep(500_000)
        #expect(counts(restored.stdout).isEmpty, "the restored guest ran before vm.resume: \(restored.stdout.suffix(200))")
        #expect(restored.curl("PUT", "vm.resume").status == 204)
        #expect(eventually(10) { counts(restored.stdout).count >= 2 }, "\(restored.stdout.suffix(300)) \(restored.stderr.suffix(500))")
        let first = try #require(counts(restored.stdout).first)
        #expect(first.ram == saved.ram + 1 && first.register == saved.register + 1,
                "restored at \(first), saved at \(saved): the guest did not go on from its snapshot")

        // Only the pages with data were read in; prefault=on faults in all of RAM.
        let lazy = RobustnessTests.resident(restored.child.processIdentifier) * 1024
        #expect(lazy > 0 && lazy < 64 << 20, "restored without prefault, the VMM has \(lazy) bytes resident")

        // resume=on: it runs with no vm.resume, again from the same point.
        kill(restored.child.processIdentifier, SIGKILL)
        let running = try APIVMM(["--restore", "source_url=file://\(dir),resume=on"])
        #expect(running.state == "Running")
        #expect(eventually(10) { !counts(running.stdout).isEmpty }, "\(running.stderr.suffix(500))")
        #expect(counts(running.stdout).first.map { $0.ram == saved.ram + 1 } == true, "\(running.stdout.suffix(200))")
        kill(running.child.processIdentifier, SIGKILL)

        let prefaulted = try APIVMM(["--restore", "source_url=file://\(dir),prefault=on"])
        let all = RobustnessTests.resident(prefaulted.child.processIdentifier) * 1024
        #expect(all >= 128 << 20, "restored with prefault=on, the VMM has only \(all) bytes resident")
    }

    @Test("net_fds: the snapshot's net takes a tap the caller opened, on the command line and through ch-remote, instead of its name, and announces the guest's MAC on it when it runs; a net it does not have is refused",
          .enabled(if: NetHostTests.canMakeTaps && access("/usr/sbin/ip", X_OK) == 0, "needs root and /dev/net/tun"))
    func restoreTakesTaps() throws {
        let dir = try snapshotDirectory()
        let ns = "chrestore\(getpid())"
        #expect(run("/usr/sbin/ip", ["netns", "add", ns]).status == 0)
        defer {
            _ = run("/usr/sbin/ip", ["netns", "del", ns])
            try? FileManager.default.removeItem(atPath: dir)
        }
        let inNS = ["/usr/sbin/ip", "netns", "exec", ns]
        let tapfd = Guests.repository.appendingPathComponent("lab/tests/tapfd.py").path
        func exists(_ tap: String) -> Bool { run(inNS[0], Array(inNS.dropFirst()) + ["ip", "-o", "link", "show", tap]).status == 0 }

        let source = try APIVMM(try guest() + ["--net", "tap=rsrc0,ip=10.207.0.1,mask=255.255.255.0,id=net0,mac=12:34:56:78:90:c1"],
                                launcher: inNS)
        #expect(exists("rsrc0"))
        #expect(source.curl("PUT", "vm.pause").status == 204)
        #expect(source.curl("PUT", "vm.snapshot", body: "{\"destination_url\":\"file://\(dir)\"}").status == 204)
        kill(source.child.processIdentifier, SIGKILL)
        source.child.waitUntilExit()
        #expect(eventually(5) { !exists("rsrc0") }, "the source's tap outlived it")

        // The command line: --restore net_fds, the tap open across exec.
        let restored = try APIVMM(["--restore", "source_url=file://\(dir),net_fds=[net0@[{fd}]]"],
                                  launcher: inNS + ["python3", tapfd, "rdst0", "10.208.0.1/24", "--"])
        #expect(restored.state == "Paused")
        #expect(exists("rdst0") && !exists("rsrc0"), "the restore opened the snapshot's tap by name instead of the one given")
        // Once it runs, the host side hears of the guest's MAC at once (RARP).
        let heard = FileManager.default.temporaryDirectory.appendingPathComponent("rarp-\(getpid())").path
        defer { unlink(heard) }
        let sniff = """
            import socket
            s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x8035))
            s.bind(("rdst0", 0)); s.settimeout(10)
            print("listening", flush=True)
            print(s.recv(64)[6:12].hex(":"), flush=True)
            """
        let out = open(heard, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        let null = open("/dev/null", O_RDONLY | O_CLOEXEC)
        let listener = try Child(inNS[0], Array(inNS.dropFirst()) + ["python3", "-c", sniff], stdin: null, stdout: out, stderr: out)
        close(out)
        close(null)
        #expect(eventually(5) { ((try? String(contentsOfFile: heard, encoding: .utf8)) ?? "").contains("listening") })
        #expect(restored.curl("PUT", "vm.resume").status == 204)
        listener.waitUntilExit()
        let frame = (try? String(contentsOfFile: heard, encoding: .utf8)) ?? ""
        #expect(frame.contains("12:34:56:78:90:c1"), "no RARP from the guest's MAC after the resume: \(frame)")
        kill(restored.child.processIdentifier, SIGKILL)
        restored.child.waitUntilExit()

        let stranger = run(inNS[0], Array(inNS.dropFirst()) + ["python3", tapfd, "rdst1", "10.209.0.1/24", "--", VMM.binary,
                                                             "--restore", "source_url=file://\(dir),net_fds=[other@[{fd}]]"])
        #expect(stranger.status != 0 && stranger.stderr.contains("the snapshot has no net with this id (it has: net0)"), "\(stranger.stderr)")

        // ch-remote restore: the descriptors go with the request, the body counts them.
        let empty = try APIVMM([], launcher: inNS)
        let remote = VMM.binary.replacingOccurrences(of: "/cloud-hypervisor", with: "/ch-remote")
        let sent = run(inNS[0], Array(inNS.dropFirst()) + ["python3", tapfd, "rdst2", "10.210.0.1/24", "--", remote, "--api-socket", empty.socket,
                                                         "restore", "source_url=file://\(dir),net_fds=[net0@[{fd}]]"])
        #expect(sent.status == 0, "\(sent.stderr)")
        #expect(empty.state == "Paused")
        #expect(exists("rdst2") && !exists("rsrc0"), "the tap did not outlive ch-remote: the VMM did not take it")
    }

    /// A VM with one vCPU, and that vCPU's CPUID as a snapshot saves it.
    func vcpuCPUID() throws -> (VirtualMachine, vmm_cpuid_state) {
        let vm = try VirtualMachine(kvm: try KVMDevice(), memory: MemoryConfig(sizeBytes: 16 << 20))
        try vm.createVCPUs(CPUsConfig())
        var saved = vmm_cpuid_state()
        #expect(vmm_vcpu_save_cpuid(vm.handle, 0, &saved) == 0)
        return (vm, saved)
    }

    @Test("A vCPU's CPUID goes with its state: taken back as saved, refused when it names a feature this host's KVM lacks")
    func cpuidTravels() throws {
        var (vm, saved) = try vcpuCPUID()
        #expect(saved.nent > 0)
        #expect(vmm_vcpu_restore_cpuid(vm.handle, 0, &saved) == 0)
        var foreign = saved
        withUnsafeMutableBytes(of: &foreign.entries) { raw in
            let entries = raw.bindMemory(to: kvm_cpuid_entry2.self)
            for i in 0..<Int(saved.nent) where entries[i].function == 7 && entries[i].index == 0 { entries[i].ebx = ~0 }
        }
        #expect(vmm_vcpu_restore_cpuid(vm.handle, 0, &foreign) == -EOPNOTSUPP, "a CPU this host cannot give was taken")
        var empty = vmm_cpuid_state()
        #expect(vmm_vcpu_restore_cpuid(vm.handle, 0, &empty) == -EINVAL)
    }

    @Test("A vCPU's CPUID names the host's processor (leaves 0x80000002-4, which KVM leaves empty)")
    func processorName() throws {
        var (_, saved) = try vcpuCPUID()
        var name: [UInt8] = []
        withUnsafeBytes(of: &saved.entries) { raw in
            let entries = raw.bindMemory(to: kvm_cpuid_entry2.self)
            for leaf in UInt32(0x8000_0002)...0x8000_0004 {
                guard let e = entries.prefix(Int(saved.nent)).first(where: { $0.function == leaf }) else { continue }
                for word in [e.eax, e.ebx, e.ecx, e.edx] { name += withUnsafeBytes(of: word.littleEndian) { Array($0) } }
            }
        }
        let guest = String(decoding: name.prefix { $0 != 0 }, as: UTF8.self).trimmingCharacters(in: .whitespaces)
        // The host kernel's own reading of the same leaves.
        let cpuinfo = try String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)
        let host = cpuinfo.split(separator: "\n").first { $0.hasPrefix("model name") }?
            .split(separator: ":", maxSplits: 1).last?.trimmingCharacters(in: .whitespaces) ?? ""
        #expect(!guest.isEmpty && guest == host, "guest '\(guest)', host '\(host)'")
    }

    @Test("A power-button press the guest has not read yet is in the snapshot, and raised again by the restore")
    func pendingGuestEvent() throws {
        let first = try snapshotDirectory(), second = try snapshotDirectory()
        defer { [first, second].forEach { try? FileManager.default.removeItem(atPath: $0) } }
        func pending(_ dir: String) throws -> UInt8 {
            let file = try StateFile(parsing: Array(try Data(contentsOf: URL(fileURLWithPath: dir + "/state"))))
            return try file.value("platform", version: VMM_PLATFORM_STATE_VERSION, as: vmm_platform_state.self).ged_pending
        }
        // The counter guest never runs the GED's _EVT: the press stays unread.
        let source = try APIVMM(try guest())
        #expect(source.curl("PUT", "vm.power-button").status == 204)
        #expect(source.curl("PUT", "vm.pause").status == 204)
        #expect(source.curl("PUT", "vm.snapshot", body: "{\"destination_url\":\"file://\(first)\"}").status == 204)
        #expect(try pending(first) == UInt8(VMM_GED_POWER_BUTTON))
        kill(source.child.processIdentifier, SIGKILL)
        let restored = try APIVMM(["--restore", "source_url=file://\(first)"])
        #expect(restored.curl("PUT", "vm.snapshot", body: "{\"destination_url\":\"file://\(second)\"}").status == 204)
        #expect(try pending(second) == UInt8(VMM_GED_POWER_BUTTON), "the restored VM lost the guest's unread event")
    }

    @Test("vm.snapshot forty times, and vm.restore and vm.snapshot refused forty times: descriptors, threads and mappings as they were")
    func repeated() throws {
        let dir = try snapshotDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let vmm = try APIVMM(try guest())
        #expect(vmm.curl("PUT", "vm.pause").status == 204)
        #expect(vmm.curl("PUT", "vm.snapshot", body: "{\"destination_url\":\"file://\(dir)\"}").status == 204)
        let before = HotplugFootprint(vmm)
        for _ in 0..<40 {
            #expect(vmm.curl("PUT", "vm.snapshot", body: "{\"destination_url\":\"file://\(dir)\"}").status == 204)
            #expect(vmm.curl("PUT", "vm.snapshot", body: "{\"destination_url\":\"file://\(dir)/none\"}").status == 400)
            #expect(vmm.curl("PUT", "vm.restore", body: "{\"source_url\":\"file://\(dir)\"}").status == 500)
        }
        let after = HotplugFootprint(vmm)
        #expect(after == before && after.mappings == before.mappings, "before: \(before)\nafter: \(after)")
        // A VMM with no VM: restores refused (a damaged state) leave nothing behind either.
        let empty = try APIVMM([])
        let idle = HotplugFootprint(empty)
        try Data("VMMSTATE-not-really".utf8).write(to: URL(fileURLWithPath: dir + "/state"))
        for _ in 0..<40 {
            let refused = empty.curl("PUT", "vm.restore", body: "{\"source_url\":\"file://\(dir)\"}")
            #expect(refused.status == 400 && refused.body.contains("damaged"), "\(refused.body)")
        }
        let still = HotplugFootprint(empty)
        #expect(still == idle && still.mappings == idle.mappings, "before: \(idle)\nafter: \(still)")
    }

    @Test("refused with one line: a URL not file://, a directory that is not there, a damaged or cut state file, memory of another size, --restore with VM options")
    func refusals() throws {
        let dir = try snapshotDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let vmm = try APIVMM(try guest())
        #expect(vmm.curl("PUT", "vm.pause").status == 204)
        let tcp = vmm.curl("PUT", "vm.snapshot", body: "{\"destination_url\":\"tcp://1.2.3.4:5\"}")
        #expect(tcp.status == 400 && tcp.body.contains("only file:// URLs"), "\(tcp.body)")
        let missing = vmm.curl("PUT", "vm.snapshot", body: "{\"destination_url\":\"file://\(dir)/none\"}")
        #expect(missing.status == 400 && missing.body.contains("mkdir -p"), "\(missing.body)")
        #expect(vmm.curl("PUT", "vm.snapshot", body: "{\"destination_url\":\"file://\(dir)\"}").status == 204)
        #expect(vmm.curl("PUT", "vm.resume").status == 204, "the VM runs on after its snapshot")
        #expect(vmm.state == "Running")

        // One byte changed in the state file: the checksum refuses it.
        var state = try Data(contentsOf: URL(fileURLWithPath: dir + "/state"))
        state[state.count / 2] ^= 0xff
        try state.write(to: URL(fileURLWithPath: dir + "/state"))
        let damaged = runVMM(["--restore", "source_url=file://\(dir)"])
        #expect(damaged.status == 1 && damaged.stderr.contains("checksum does not match"), "\(damaged.stderr)")
        #expect(damaged.stderr.split(separator: "\n").count == 1, "\(damaged.stderr)")
        // Cut short: refused as well.
        try state.prefix(100).write(to: URL(fileURLWithPath: dir + "/state"))
        let cut = runVMM(["--restore", "source_url=file://\(dir)"])
        #expect(cut.status == 1 && cut.stderr.contains("the snapshot is damaged"), "\(cut.stderr)")
        state[state.count / 2] ^= 0xff
        try state.write(to: URL(fileURLWithPath: dir + "/state"))

        // Memory cut short: refused before the guest runs.
        #expect(truncate(dir + "/memory", 64 << 20) == 0)
        let short = runVMM(["--restore", "source_url=file://\(dir)"])
        #expect(short.status == 1 && short.stderr.contains("is not the size of the snapshot's RAM"), "\(short.stderr)")
        let both = runVMM(["--restore", "source_url=file://\(dir)", "--kernel", try Guests.path("counter")])
        #expect(both.status == 1 && both.stderr.contains("without --kernel"), "\(both.stderr)")
        let options = runVMM(["--restore", "source_url=file://\(dir),vfio_fds=[3]"])
        #expect(options.status == 1 && options.stderr.contains("not supported yet"), "\(options.stderr)")
        let nets = runVMM(["--restore", "source_url=file://\(dir),net_fds=[3]"])
        #expect(nets.status == 1 && nets.stderr.contains("expected id@[descriptors]"), "\(nets.stderr)")
    }
}
