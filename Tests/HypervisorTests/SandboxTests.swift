import CVMMCore
import CVMMTestHooks
import Foundation
import Glibc
import Testing
@testable import Hypervisor

/// Reads a few fields of /proc/PID/task/*/status for every thread.
func threadStatus(pid: Int32) -> [String: [String: String]] {
    let dir = "/proc/\(pid)/task"
    var result: [String: [String: String]] = [:]
    for tid in (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? [] {
        guard let text = try? String(contentsOfFile: "\(dir)/\(tid)/status", encoding: .utf8) else { continue }
        var fields: [String: String] = [:]
        for line in text.split(separator: "\n") {
            let parts = line.split(separator: ":", maxSplits: 1)
            if parts.count == 2 { fields[String(parts[0])] = parts[1].trimmingCharacters(in: .whitespaces) }
        }
        result["\(fields["Name"] ?? "?")/\(tid)"] = fields
    }
    return result
}

@Suite("seccomp filters and privilege drop", .enabled(if: Host.hasKVM, Host.kvmSkipReason), .serialized)
struct SandboxTests {
    static let isRoot = getuid() == 0

    /// Starts the spinning guest, inspects its threads once those `named`
    /// have named themselves, stops it with SIGTERM.
    private func inspectRunningVMM(_ extra: [String], named: [String] = []) throws -> (RunResult, [String: [String: String]]) {
        var seen: [String: [String: String]] = [:]
        let r = runVMM(["--kernel", try Guests.path("spin"), "--serial", "tty", "--cpus", "3"] + extra) { process, output in
            _ = eventually(10) { output().contains("spinning") }
            // vCPU threads install their filters before running guest code; the guest has printed, so all are up.
            // A device thread started before them may not have run yet on a loaded host: it names itself first.
            _ = eventually(5) {
                let names = threadStatus(pid: process.processIdentifier).keys
                return names.filter { $0.hasPrefix("vcpu") }.count == 3
                    && named.allSatisfy { name in names.contains { $0.hasPrefix(name + "/") } }
            }
            seen = threadStatus(pid: process.processIdentifier)
            process.terminate()
        }
        return (r, seen)
    }

    @Test("every thread runs filtered with no_new_privs while the guest runs, device threads included")
    func everyThreadFiltered() throws {
        let disk = FileManager.default.temporaryDirectory.appendingPathComponent("sandbox-disk-\(getpid()).raw")
        FileManager.default.createFile(atPath: disk.path, contents: Data(count: 1 << 20))
        defer { try? FileManager.default.removeItem(at: disk) }
        let socket = FileManager.default.temporaryDirectory.appendingPathComponent("sandbox-api-\(getpid()).sock").path
        let vsock = FileManager.default.temporaryDirectory.appendingPathComponent("sandbox-vsock-\(getpid()).sock").path
        let console = FileManager.default.temporaryDirectory.appendingPathComponent("sandbox-console-\(getpid()).sock").path
        let named = ["virtio-blk0", "virtio-console", "virtio-rng", "api", "virtio-vsock", "console-socket", "virtio-iommu"]
        let (r, threads) = try inspectRunningVMM(["--disk", "path=\(disk.path),iommu=on", "--console", "socket=\(console)",
                                                  "--api-socket", socket, "--vsock", "cid=3,socket=\(vsock)"], named: named)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(threads.keys.filter { $0.hasPrefix("vcpu") }.count == 3, "\(threads.keys)")
        for name in named {
            #expect(threads.keys.contains { $0.hasPrefix(name + "/") }, "no \(name) thread: \(threads.keys)")
        }
        for (name, status) in threads {
            #expect(status["Seccomp"] == "2", "\(name)")
            #expect(status["NoNewPrivs"] == "1", "\(name)")
        }
    }

    @Test("every thread's stack is VMM_THREAD_STACK_SIZE, below a transparent huge page, not glibc's 8 MiB")
    func threadStacks() throws {
        let socket = FileManager.default.temporaryDirectory.appendingPathComponent("stacks-api-\(getpid()).sock").path
        var sizes: [Int] = []
        var threads = 0
        let r = runVMM(["--kernel", try Guests.path("spin"), "--serial", "tty", "--cpus", "3", "--api-socket", socket]) { process, output in
            _ = eventually(10) { output().contains("spinning") }
            let pid = process.processIdentifier
            threads = threadStatus(pid: pid).keys.filter { !$0.hasPrefix("kvm") }.count
            // A stack is an anonymous read-write mapping above its guard page.
            let maps = (try? String(contentsOfFile: "/proc/\(pid)/maps", encoding: .utf8)) ?? ""
            let lines = maps.split(separator: "\n").map { $0.split(separator: " ", omittingEmptySubsequences: true) }
            for (guardLine, line) in zip(lines, lines.dropFirst()) where line.count == 5 && line[1] == "rw-p" && guardLine[1] == "---p" {
                let bounds = line[0].split(separator: "-").compactMap { Int($0, radix: 16) }
                sizes.append(bounds[1] - bounds[0])
            }
            process.terminate()
        }
        #expect(r.status == 0, "\(r.stderr)")
        #expect(sizes.filter { $0 == Int(VMM_THREAD_STACK_SIZE) }.count >= threads - 1, "main + \(threads - 1) threads, stacks: \(sizes)")
        #expect(sizes.allSatisfy { $0 < 2 << 20 }, "a stack a huge page could back (glibc's default is 8 MiB): \(sizes)")
    }

    @Test("--seccomp false installs no filter")
    func seccompOff() throws {
        let (r, threads) = try inspectRunningVMM(["--seccomp", "false"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(!threads.isEmpty)
        for (name, status) in threads { #expect(status["Seccomp"] == "0", "\(name)") }
    }

    @Test("--user nobody: ids changed and every capability set empty on every thread, the API's included", .enabled(if: isRoot, "needs root"))
    func dropToNobody() throws {
        let socket = FileManager.default.temporaryDirectory.appendingPathComponent("nobody-api-\(getpid()).sock").path
        let (r, threads) = try inspectRunningVMM(["--user", "nobody", "--api-socket", socket])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(threads.keys.contains { $0.hasPrefix("api/") }, "\(threads.keys)")
        let nobody = String(getpwnam("nobody")!.pointee.pw_uid)
        for (name, status) in threads {
            #expect(status["Uid"]?.split(separator: "\t").allSatisfy { $0 == nobody } == true, "\(name): \(status["Uid"] ?? "")")
            #expect(status["Groups"] == "", "\(name)")
            for set in ["CapEff", "CapPrm", "CapBnd", "CapAmb", "CapInh"] {
                #expect(status[set] == "0000000000000000", "\(name) \(set)")
            }
            #expect(status["Seccomp"] == "2", "\(name)")
        }
    }

    @Test("a guest reset reboots under the filters as nobody", .enabled(if: isRoot, "needs root"))
    func rebootWhileConfined() throws {
        let r = runVMM(["--kernel", try Guests.path("reset"), "--serial", "tty", "--cpus", "2", "--user", "nobody"]) { process, output in
            _ = eventually(10) { output().components(separatedBy: "booted\n").count > 3 }
            process.terminate()
        }
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.components(separatedBy: "booted\n").count > 3)
    }

    @Test("unknown users and groups are refused before anything runs")
    func unknownIdentity() throws {
        var r = runVMM(["--kernel", try Guests.path("hello"), "--user", "no-such-user-here"])
        #expect(r.status == 1)
        #expect(r.stderr == "cloud-hypervisor: error: --user: invalid value 'no-such-user-here': no such user\n")
        r = runVMM(["--kernel", try Guests.path("hello"), "--group", "no-such-group-here"])
        #expect(r.stderr == "cloud-hypervisor: error: --group: invalid value 'no-such-group-here': no such group\n")
    }

    @Test("a vCPU thread's forbidden syscall kills the VMM with a line naming the thread kind and syscall")
    func violationKills() throws {
        let filter = try SeccompFilter(kind: VMM_THREAD_VCPU, mode: .enabled)
        #expect(SeccompFilter.trapInitialized == 0)
        var outcome = vmm_test_violation()
        #expect(vmm_test_violate(filter.opaque.assumingMemoryBound(to: vmm_seccomp_program.self), &outcome) == 0)
        let text = outcome.stderrText
        #expect(outcome.exit_code == 1)
        #expect(text == "cloud-hypervisor: error: seccomp: the vcpu thread made a forbidden system call: socket (41); stopping the VMM\n")
    }

    @Test("a seccomp kill on any thread kind restores the terminal the VMM put in raw mode",
          arguments: [VMM_THREAD_VCPU, VMM_THREAD_VIRTIO_BLK, VMM_THREAD_VIRTIO_CONSOLE, VMM_THREAD_VIRTIO_RNG,
                      VMM_THREAD_VIRTIO_NET, VMM_THREAD_API, VMM_THREAD_VMM, VMM_THREAD_VHOST_USER,
                      VMM_THREAD_CONSOLE_SOCKET]) // (the vsock's thread may call socket(2), the violation made here)
    func violationRestoresTerminal(kind: vmm_thread_kind) throws {
        var master: Int32 = -1, slave: Int32 = -1
        try #require(vmm_test_openpty(&master, &slave) == 0)
        defer { close(master); close(slave) }
        var before = termios()
        try #require(tcgetattr(slave, &before) == 0)
        try #require(before.c_lflag & tcflag_t(ICANON | ECHO) == tcflag_t(ICANON | ECHO), "a cooked terminal to start with")
        // The API thread's filter as the launch builds it; the others as the Sandbox does.
        let filter = kind == VMM_THREAD_API
            ? try #require(try Sandbox.apiFilter(VMConfig(), terminal: true))
            : try SeccompFilter(kind: kind, mode: .enabled, extraIoctls: Sandbox.terminalIoctls(true))
        #expect(SeccompFilter.trapInitialized == 0)
        var outcome = vmm_test_violation()
        #expect(vmm_test_violate_on_terminal(filter.opaque.assumingMemoryBound(to: vmm_seccomp_program.self), slave, &outcome) == 0)
        let text = outcome.stderrText
        #expect(outcome.exit_code == 1, "the violation ended the child: signal \(outcome.signal), \(text)")
        var after = termios()
        try #require(tcgetattr(slave, &after) == 0)
        #expect(after.c_lflag == before.c_lflag && after.c_iflag == before.c_iflag && after.c_oflag == before.c_oflag,
                "the terminal is as it was")
    }

    @Test("tgkill reaches this VMM's own threads only, in every filter that has it", arguments: [VMM_THREAD_VCPU, VMM_THREAD_VMM])
    func tgkillOwnProcess(kind: vmm_thread_kind) throws {
        let filter = try SeccompFilter(kind: kind, mode: .enabled)
        #expect(SeccompFilter.trapInitialized == 0)
        let program = filter.opaque.assumingMemoryBound(to: vmm_seccomp_program.self)
        var own = vmm_test_violation()
        // The filter was built in this process: its pid is the one allowed (signal 0 only checks).
        #expect(vmm_test_tgkill(program, getpid(), &own) == 0)
        #expect(own.exit_code == 0 && own.result == 0, "\(own.exit_code) \(own.result)")
        var other = vmm_test_violation()
        #expect(vmm_test_tgkill(program, 1, &other) == 0)
        let text = other.stderrText
        #expect(other.exit_code == 1)
        #expect(text.contains("forbidden system call: tgkill (234)"), "\(text)")
    }

    @Test("sched_setscheduler: the calling thread to SCHED_BATCH only (a device thread's start); another thread or another policy kills")
    func schedBatchOnly() throws {
        let filter = try SeccompFilter(kind: VMM_THREAD_VMM, mode: .enabled)
        #expect(SeccompFilter.trapInitialized == 0)
        let program = filter.opaque.assumingMemoryBound(to: vmm_seccomp_program.self)
        var own = vmm_test_violation()
        #expect(vmm_test_sched_setscheduler(program, 0, SCHED_BATCH, &own) == 0)
        #expect(own.exit_code == 0 && own.result == 0, "\(own.exit_code) \(own.result)")
        for (pid, policy) in [(0, SCHED_IDLE), (0, SCHED_FIFO), (getpid(), SCHED_BATCH)] {
            var refused = vmm_test_violation()
            #expect(vmm_test_sched_setscheduler(program, pid, policy, &refused) == 0)
            let text = refused.stderrText
            #expect(refused.exit_code == 1 && text.contains("forbidden system call: sched_setscheduler"), "\(pid) \(policy): \(text)")
        }
    }

    @Test("under --seccomp log a forbidden syscall is allowed and logged by the kernel")
    func violationLogged() throws {
        let filter = try SeccompFilter(kind: VMM_THREAD_VMM, mode: .log)
        var outcome = vmm_test_violation()
        #expect(vmm_test_violate(filter.opaque.assumingMemoryBound(to: vmm_seccomp_program.self), &outcome) == 0)
        #expect(outcome.exit_code == 0)
        #expect(outcome.result >= 0, "socket() ran")
        let dmesg = run("/usr/bin/env", ["dmesg"])
        try #require(dmesg.status == 0, "kernel log unreadable here")
        #expect(dmesg.stdout.contains("pid=\(outcome.child_pid) ") && dmesg.stdout.contains("syscall=41"),
                "no audit record for pid \(outcome.child_pid)")
    }

    @Test("under --seccomp errno a forbidden syscall fails with EPERM and the thread runs on")
    func violationErrno() throws {
        let filter = try SeccompFilter(kind: VMM_THREAD_VCPU, mode: .errno)
        var outcome = vmm_test_violation()
        #expect(vmm_test_violate(filter.opaque.assumingMemoryBound(to: vmm_seccomp_program.self), &outcome) == 0)
        #expect(outcome.exit_code == 0, "the thread was not killed")
        #expect(outcome.result == -Int(EPERM), "socket() returned \(outcome.result)")
        let r = runVMM(["--kernel", try Guests.path("hello"), "--serial", "tty", "--console", "off", "--seccomp", "errno"])
        #expect(r.status == 0 && r.stdout.hasPrefix("Hello from a tiny PVH guest"), "\(r.stderr)")
    }

    @Test("descriptors inherited from the parent are closed at start; a closed standard stream is reopened on /dev/null")
    func inheritedDescriptors() throws {
        let marker = FileManager.default.temporaryDirectory.appendingPathComponent("inherited-\(getpid())").path
        FileManager.default.createFile(atPath: marker, contents: Data("secret".utf8))
        defer { try? FileManager.default.removeItem(atPath: marker) }
        let spin = try Guests.path("spin")
        for extra in [[], ["--seccomp", "true", "--user", "nobody"]] where extra.isEmpty || Self.isRoot {
            // A file, a pipe and a socket left open by the parent, and standard input closed. The VMM
            // runs under timeout (it cannot outlive the test) and is found by a marker in its command line.
            let tag = "inherited-test-\(getpid())-\(extra.count)"
            let script = "exec 7<\(marker) 8</dev/zero 9<&-; exec 0<&-; exec timeout 20 \(VMM.binary) --kernel \(spin) --serial tty --console off --cmdline \(tag) "
                + extra.joined(separator: " ") + " 6< <(:) 5<>/dev/null"
            var links: [String] = []
            let r = run("/bin/bash", ["-c", "python3 -c 'import socket,os,sys; s=socket.socket(); os.set_inheritable(s.fileno(), True); os.dup2(s.fileno(), 11); os.execv(\"/bin/bash\", [\"bash\", \"-c\", sys.argv[1]])' '\(script)'"], timeout: 25) { process, output in
                _ = eventually(10) { output().contains("spinning") }
                let vmm = ((try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []).first { pid in
                    let cmdline = (try? Data(contentsOf: URL(fileURLWithPath: "/proc/\(pid)/cmdline"))) ?? Data()
                    return Int32(pid) != nil && String(decoding: cmdline, as: UTF8.self).contains(tag)
                        && String(decoding: cmdline, as: UTF8.self).hasPrefix(VMM.binary)
                } ?? "0"
                let dir = "/proc/\(vmm)/fd"
                for fd in (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? [] {
                    links.append("\(fd) -> \((try? FileManager.default.destinationOfSymbolicLink(atPath: "\(dir)/\(fd)")) ?? "?")")
                }
                if let pid = Int32(vmm), pid > 0 { kill(pid, SIGTERM) }
            }
            #expect(r.status == 0, "\(r.stderr)")
            #expect(!links.isEmpty)
            for link in links {
                #expect(!link.contains(marker) && !link.contains("/dev/zero") && !link.contains("pipe:") && !link.contains("socket:"),
                        "inherited: \(link) (\(extra))")
            }
            #expect(links.contains { $0.hasPrefix("0 -> /dev/null") }, "standard input reopened on /dev/null: \(links)")
        }
    }

    @Test("each thread kind's list is short, and the VMM's covers every other kind's")
    func listSizes() throws {
        let vcpu = SeccompFilter.syscalls(for: VMM_THREAD_VCPU)
        let vmm = SeccompFilter.syscalls(for: VMM_THREAD_VMM)
        for kind in SeccompFilter.childKinds {
            #expect(Set(SeccompFilter.syscalls(for: kind)).isSubset(of: Set(vmm)))
            #expect(Set(SeccompFilter.ioctls(for: kind)).isSubset(of: Set(SeccompFilter.ioctls(for: VMM_THREAD_VMM))))
        }
        for kind in [VMM_THREAD_VIRTIO_BLK, VMM_THREAD_VIRTIO_CONSOLE, VMM_THREAD_VIRTIO_RNG] {
            #expect(SeccompFilter.syscalls(for: kind).count <= 15, "device threads need little")
            #expect(SeccompFilter.ioctls(for: kind).isEmpty, "device threads issue no ioctl")
        }
        #expect(SeccompFilter.syscalls(for: VMM_THREAD_VIRTIO_NET).count <= 15)
        for kind in SeccompFilter.childKinds + SeccompFilter.optionalKinds + [VMM_THREAD_API, VMM_THREAD_VMM] {
            #expect(SeccompFilter.syscalls(for: kind).contains("restart_syscall"), "a signal during a timed wait must not kill the thread")
        }
        // TUNSETOFFLOAD and TUNSETQUEUE (_IOW('T', 208 and 217, int); Swift sees no _IOW).
        #expect(SeccompFilter.ioctls(for: VMM_THREAD_VIRTIO_NET) == [0x4004_54d0, 0x4004_54d9],
                "virtio-net sets the tap's offloads and queues, nothing else")
        #expect(vcpu.count + 1 <= 27, "Firecracker's vCPU list is about 27")
        #expect(vmm.count + 1 <= 50, "Firecracker's VMM list is about 50")
    }
}

extension vmm_test_violation {
    /// What the confined child wrote to stderr (the SIGSYS report), up to its NUL.
    var stderrText: String {
        withUnsafeBytes(of: stderr_text) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
    }
}
