import CVMMTestHooks
import Foundation
import Testing

@Suite("cloud-hypervisor on /dev/kvm with tiny PVH guests", .enabled(if: Host.hasKVM, Host.kvmSkipReason))
struct EndToEndTests {
    @Test("serial output, command line and initramfs reach the guest; power-off exits 0")
    func hello() throws {
        let initramfs = FileManager.default.temporaryDirectory.appendingPathComponent("initramfs-\(getpid()).txt")
        try "module bytes".write(to: initramfs, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: initramfs) }
        let r = runVMM(["--kernel", try Guests.path("hello"), "--serial", "tty", "--console", "off",
                        "--cpus", "1", "--memory", "size=64M", "--cmdline", "console=ttyS0 quiet",
                        "--initramfs", initramfs.path])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout == """
            Hello from a tiny PVH guest
            cmdline: console=ttyS0 quiet
            module: module bytesmemmap entries: 3

            """)
    }

    @Test("RAM above the 32-bit hole shows up as one more memory map entry")
    func highMemory() throws {
        // Low RAM, high RAM, the reserved ECAM window, and RAM from 4 GiB.
        let r = runVMM(["--kernel", try Guests.path("hello"), "--serial", "tty", "--memory", "size=3200M"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("memmap entries: 4"))
    }

    @Test("--serial file= writes the guest's output to the file; null and off print nothing")
    func serialModes() throws {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("serial-\(getpid()).log")
        defer { try? FileManager.default.removeItem(at: file) }
        let hello = try Guests.path("hello")
        var r = runVMM(["--kernel", hello, "--serial", "file=\(file.path)"])
        #expect(r.status == 0)
        #expect(r.stdout.isEmpty)
        #expect(try String(contentsOf: file, encoding: .utf8).hasPrefix("Hello from a tiny PVH guest\n"))
        for mode in ["null", "off"] {
            r = runVMM(["--kernel", hello, "--serial", mode])
            #expect(r.status == 0, "\(mode): \(r.stderr)")
            #expect(r.stdout.isEmpty, "\(mode)")
        }
    }

    @Test("--serial tty: standard input reaches the guest, a paste longer than the FIFO too")
    func serialInput() throws {
        let line = String(repeating: "0123456789", count: 30) + "\n"
        let r = runVMM(["--kernel", try Guests.path("echo"), "--serial", "tty"], input: line)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout == "echo> " + line)
    }

    @Test("on a terminal: raw mode while the guest runs, the settings restored after")
    func rawTerminal() throws {
        var master: Int32 = -1, slave: Int32 = -1
        try #require(vmm_test_openpty(&master, &slave) == 0)
        defer { close(master); close(slave) }
        var before = termios(), during = termios(), after = termios()
        tcgetattr(slave, &before)
        let process = try Child(VMM.binary, ["--kernel", try Guests.path("echo"), "--serial", "tty"],
                                stdin: slave, stdout: slave, stderr: slave)
        #expect(eventually(10) { tcgetattr(slave, &during); return during.c_lflag & tcflag_t(ICANON) == 0 })
        _ = write(master, "x\n", 2)
        #expect(eventually(10) { !process.isRunning })
        if process.isRunning { process.terminate() }
        process.waitUntilExit()
        tcgetattr(slave, &after)
        #expect(process.terminationStatus == 0)
        #expect(during.c_lflag & tcflag_t(ECHO) == 0, "no local echo while the guest owns the console")
        #expect(after.c_lflag == before.c_lflag && after.c_iflag == before.c_iflag && after.c_oflag == before.c_oflag)
    }

    @Test("reads from unassigned ports and MMIO return all ones inside a real guest")
    func unassigned() throws {
        let r = runVMM(["--kernel", try Guests.path("io"), "--serial", "tty"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout == "unassigned reads: all ones\n")
    }

    @Test("a triple fault exits non-zero with a register dump and a message")
    func tripleFault() throws {
        let r = runVMM(["--kernel", try Guests.path("triple"), "--serial", "tty"])
        #expect(r.status == 1)
        #expect(r.stdout == "about to triple-fault\n")
        #expect(r.stderr.contains("rip="))
        #expect(r.stderr.contains("cloud-hypervisor: error: the guest triple-faulted on vCPU 0 (KVM_EXIT_SHUTDOWN)"))
    }

    @Test("vCPUs start with MTRRs on (write-back default) and fast strings, as firmware leaves them", arguments: [1, 2])
    func bootMSRs(cpus: Int) throws {
        let r = runVMM(["--kernel", try Guests.path("msr"), "--serial", "tty", "--cpus", "boot=\(cpus)"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout == "MTRRs on, default write-back\nfast strings on\n")
    }

    @Test("a guest that reports a panic through pvpanic ends the run with an error, not a reboot")
    func guestPanic() throws {
        let r = runVMM(["--kernel", try Guests.path("panic"), "--serial", "tty"])
        #expect(r.status == 1, "\(r.stderr)")
        #expect(r.stdout == "Kernel panic - not syncing: test\n")
        #expect(r.stderr.contains("cloud-hypervisor: error: the guest kernel panicked"), "\(r.stderr)")
    }

    @Test("several vCPUs: the APs start by INIT-SIPI, and all stop on power-off", arguments: [2, 4, 8])
    func smp(cpus: Int) throws {
        let r = runVMM(["--kernel", try Guests.path("smp"), "--serial", "tty", "--cpus", "boot=\(cpus)",
                        "--cmdline", "\(cpus - 1)"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout == "APs started: \(cpus - 1)\n")
    }

    /// Started with fewer CPUs than vCPUs (taskset), the vCPU threads take
    /// turns and are SCHED_BATCH (3), under the VMM's seccomp filter; with a
    /// CPU each they stay SCHED_OTHER (0); a policy the VMM was started with
    /// (SCHED_IDLE, 5) is kept.
    @Test("vCPUs that outnumber the VMM's CPUs do not preempt each other (SCHED_BATCH); others keep their policy",
          arguments: [(["0"], 2, 3), (["0"], 1, 0), (["0", "idle"], 2, 5)])
    func vcpusSharingCPUs(setting: [String], cpus: Int, policy: Int) throws {
        var policies: [String: Int] = [:]
        let chrt = setting.contains("idle") ? ["/usr/bin/chrt", "--idle", "0"] : []
        let r = run("/usr/bin/taskset", ["-c", setting[0]] + chrt + [VMM.binary, "--kernel", try Guests.path("spin"),
                    "--serial", "tty", "--cpus", "\(cpus)", "--seccomp", "true"]) { process, output in
            _ = eventually(10) { output().contains("spinning") }
            _ = eventually(5) {
                policies = threadPolicies(of: process.processIdentifier)
                return policies.keys.filter { $0.hasPrefix("vcpu") }.count == cpus
            }
            process.terminate()
        }
        #expect(r.status == 0, "\(r.stderr)")
        let vcpus = policies.filter { $0.key.hasPrefix("vcpu") }
        #expect(vcpus.count == cpus && vcpus.values.allSatisfy { $0 == policy }, "\(policies)")
        #expect(policies["cloud-hyperviso"] == (policy == 5 ? 5 : 0), "the VMM thread keeps its policy: \(policies)")
    }

    /// Each boot races vCPU 0's reset against the start of the other vCPU
    /// threads: a stop must reach a thread that is still starting.
    @Test("a guest reset reboots it, again and again, and SIGTERM then stops the VMM cleanly", arguments: [1, 2, 3, 4])
    func resetReboots(cpus: Int) throws {
        let boots = 30
        let r = runVMM(["--kernel", try Guests.path("reset"), "--serial", "tty", "--cpus", "\(cpus)"]) { process, output in
            _ = eventually(20) { output().components(separatedBy: "booted\n").count > boots }
            process.terminate()
        }
        #expect(!r.timedOut, "the VMM hung")
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.components(separatedBy: "booted\n").count > boots)
    }

    @Test("SIGTERM and SIGINT stop spinning vCPUs and exit 0", arguments: [SIGTERM, SIGINT])
    func signalStops(signal: Int32) throws {
        let r = runVMM(["--kernel", try Guests.path("spin"), "--serial", "tty", "--cpus", "4"]) { process, output in
            _ = eventually(10) { output().contains("spinning") }
            kill(process.processIdentifier, signal)
        }
        #expect(!r.timedOut, "the VMM did not stop")
        #expect(r.status == 0, "\(r.stderr)")
    }
}

@Suite("cloud-hypervisor refuses bad input with one line and exit 1")
struct BadInputTests {
    static let cases: [([String], String)] = [
        (["--cpus", "boot=0"], "--cpus boot: invalid value '0'"),
        (["--cpus", "boot=4,max=2"], "--cpus max: invalid value '2': max must be at least boot (4)"),
        (["--cpus", "boot=2,sockets=2"], "--cpus: unknown key 'sockets'"),
        (["--memory", "size=12Q"], "--memory size: invalid value '12Q'"),
        (["--memory", "size=1G,hugepages=on"], "--memory hugepages=on is not supported yet"),
        (["--serial", "bogus"], "expected off, null, pty, tty, file=PATH or socket=PATH"),
        (["--seccomp", "maybe"], "--seccomp: invalid value 'maybe'"),
        (["--kernel", "/a", "--kernel", "/b"], "--kernel is given more than once; give it once"),
        (["--serial", "tty", "--serial=null"], "--serial is given more than once; give it once"),
        (["--memory", "size=1G", "--memory=size=2G"], "--memory is given more than once; give it once"),
        (["--kernel", "/k", "--disk", "readonly=on"], "--disk: path=… is required"),
        (["--kernel", "/k", "--disk", "path=a.raw,image_type=qcow2"], "--disk image_type=qcow2 (only raw images for now) is not supported yet"),
        (["--kernel", "/k", "--disk", "path=a.raw,direct=on"], "--disk direct=on is not supported yet"),
        (["--kernel", "/k", "--disk", "path=a.raw,queue_size=100"], "--disk queue_size: invalid value '100': must be a power of two"),
        (["--kernel", "/k", "--disk", "path=a.raw,id=x", "path=b.raw,id=x"], "--disk: id 'x' is given to more than one device"),
        (["--kernel", "/k", "--device", "path=/tmp/device"], "--device path: invalid value '/tmp/device': expected /sys/bus/pci/devices/DDDD:BB:SS.F/"),
        (["--kernel", "/k", "--net", "tap=a,id=x", "--disk", "path=a.raw,id=x"], "--net: id 'x' is given to more than one device"),
        (["--kernel", "/k", "--net", "mac=ff:ff:ff:ff:ff:ff"], "--net mac: invalid value 'ff:ff:ff:ff:ff:ff': a multicast address"),
        (["--kernel", "/k", "--serial", "tty,iommu=on"], "--serial iommu=on is not supported yet"),
        (["--kernel", "/k", "--platform", "num_pci_segments=2,iommu_segments=[1]", "--disk", "path=a.raw,pci_segment=1"],
         "--disk: PCI segment 1 is behind the IOMMU (--platform iommu_segments): give the device iommu=on"),
        (["--kernel", "/k", "--rng", "src="], "--rng: src= needs a path"),
        (["--kernel", "/k", "--api-socket", "path=/tmp/x.sock,fd=4"], "--api-socket: give path= or fd=, not both"),
        (["--kernel", "/k", "--api-socket", "fd=1"], "--api-socket fd: invalid value '1': expected an open descriptor above 2"),
        (["--api-socket", "path=/tmp/" + String(repeating: "s", count: 120)], "longer than 107 bytes, the limit of a UNIX socket path"),
        (["--api-socket", "/tmp/x.sock", "--landlock-rules", "path=/tmp,access=r"], "--landlock-rules: give --landlock too"),
        (["--serial", "tty"], "--kernel: a kernel is required"),
        (["--kernel", "/nonexistent/vmlinux"], "--kernel: cannot read '/nonexistent/vmlinux': No such file or directory"),
        (["--kernel", "/etc/hostname"], "is neither a PVH ELF (vmlinux with CONFIG_PVH) nor a bzImage"),
        (["--kernel", "/bin/true"], "has no PVH entry point (Xen ELF note 18)"),
        (["--bogus"], "Unknown option '--bogus'"),
    ]

    @Test("each bad input names its problem", arguments: cases)
    func refused(arguments: [String], message: String) {
        let r = runVMM(arguments)
        #expect(r.status == 1)
        #expect(r.stderr.hasPrefix("cloud-hypervisor: error: "), "\(r.stderr)")
        #expect(r.stderr.contains(message), "\(r.stderr)")
        #expect(r.stderr.filter { $0 == "\n" }.count == 1, "one line: \(r.stderr)")
    }

    @Test("a kernel that does not fit in RAM is refused before it runs", .enabled(if: Host.hasKVM, Host.kvmSkipReason))
    func kernelTooBig() throws {
        let r = runVMM(["--kernel", try Guests.path("hello"), "--memory", "size=1M"])
        #expect(r.status == 1)
        #expect(r.stderr.contains("does not fit in guest memory"), "\(r.stderr)")
    }

    @Test("a bzImage without a 64-bit entry, cut short, or with a setup header past its end, is refused", .enabled(if: Host.hasKVM, Host.kvmSkipReason))
    func badBzImage() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("bzimage-\(getpid())").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        var image = [UInt8](repeating: 0, count: 0x1000)
        image.replaceSubrange(0x202..<0x206, with: Array("HdrS".utf8))
        image[0x206] = 0x0b  // protocol 2.11
        image[0x207] = 0x02
        try Data(image).write(to: URL(fileURLWithPath: path))
        var r = runVMM(["--kernel", path])
        #expect(r.status == 1)
        #expect(r.stderr.contains("boot protocol 2.11 without a 64-bit entry"), "\(r.stderr)")

        try Data(image.prefix(0x240)).write(to: URL(fileURLWithPath: path))
        r = runVMM(["--kernel", path])
        #expect(r.status == 1)
        #expect(r.stderr.contains("ends early"), "\(r.stderr)")

        // Found by fuzz/kernel.swift: the jump's offset is the image's to choose.
        image[0x206] = 0x0f  // protocol 2.15, 64-bit entry, a 2 KiB command line
        image[0x236] = 0x01
        image[0x239] = 0x08
        image[0x201] = 0xff
        try Data(image).write(to: URL(fileURLWithPath: path))
        r = runVMM(["--kernel", path])
        #expect(r.status == 1)
        #expect(r.stderr == "cloud-hypervisor: error: --kernel: bzImage '\(path)': a setup header that ends at 769, past 0x280\n", "\(r.stderr)")
    }

    @Test("--help shows an example and --version the version")
    func helpAndVersion() {
        let help = runVMM(["--help"])
        #expect(help.status == 0)
        #expect(help.stdout.contains("cloud-hypervisor --kernel vmlinux"))
        let version = runVMM(["--version"])
        #expect(version.status == 0)
        #expect(version.stdout.hasPrefix("cloud-hypervisor v"))
    }
}

extension EndToEndTests {
    @Test("--serial pty: the guest's console on a new pseudo-terminal named in the log; a line typed there reaches the guest, its echo comes back; nobody reading never stops the guest")
    func serialPty() throws {
        var path = ""
        var echoed = ""
        // The log names the terminal; open it as a user would and type.
        let log = FileManager.default.temporaryDirectory.appendingPathComponent("pty-\(getpid()).log").path
        let err = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        let null = open("/dev/null", O_RDWR)
        defer { close(err); close(null); unlink(log) }
        let vmm = try Child(VMM.binary, ["--kernel", try Guests.path("echo"), "--serial", "pty", "--console", "off", "-v"],
                            stdin: null, stdout: null, stderr: err)
        defer { if vmm.isRunning { vmm.terminate() } }
        #expect(eventually(10) {
            let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
            guard let line = text.split(separator: "\n").first(where: { $0.contains("--serial pty: ") }) else { return false }
            path = String(line.split(separator: " ").last ?? "")
            return true
        })
        try #require(path.hasPrefix("/dev/pts/"), "\(path)")
        let terminal = open(path, O_RDWR | O_NOCTTY)
        try #require(terminal >= 0)
        defer { close(terminal) }
        // The line's end last: the guest powers off on it, and a closing pty drops what is unread.
        _ = write(terminal, "hi pty", 6)
        _ = fcntl(terminal, F_SETFL, fcntl(terminal, F_GETFL) | O_NONBLOCK)
        var buffer = [UInt8](repeating: 0, count: 256)
        _ = eventually(10) {
            let n = read(terminal, &buffer, buffer.count)
            if n > 0 { echoed += String(decoding: buffer[0..<n], as: UTF8.self) }
            return echoed.contains("hi pty")
        }
        #expect(echoed == "echo> hi pty", "\(echoed)")
        _ = write(terminal, "\n", 1)
        #expect(eventually(10) { !vmm.isRunning })
        #expect(vmm.terminationStatus == 0)
    }
}

extension EndToEndTests {
    @Test("--serial pty with nobody reading: the guest's output is dropped once the terminal is full, and the guest runs on")
    func serialPtyUnread() throws {
        let log = FileManager.default.temporaryDirectory.appendingPathComponent("pty-unread-\(getpid()).log").path
        let err = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        let null = open("/dev/null", O_RDWR)
        defer { close(err); close(null); unlink(log) }
        let vmm = try Child(VMM.binary, ["--kernel", try Guests.path("ticker"), "--serial", "pty", "--console", "off", "-v"],
                            stdin: null, stdout: null, stderr: err)
        defer { if vmm.isRunning { vmm.terminate() }; vmm.waitUntilExit() }
        var path = ""
        #expect(eventually(10) {
            let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
            path = text.split(separator: "\n").first { $0.contains("--serial pty: ") }.map { String($0.split(separator: " ").last ?? "") } ?? ""
            return !path.isEmpty
        })
        sleep(3) // far more ticks than a terminal holds
        // A vCPU that waited for the terminal would sit in write(2); this one runs the guest.
        let pid = vmm.processIdentifier
        let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task")) ?? []
        let vcpu = tasks.first { ((try? String(contentsOfFile: "/proc/\(pid)/task/\($0)/comm", encoding: .utf8)) ?? "").hasPrefix("vcpu0") }
        let tid = try #require(vcpu, "no vcpu0 thread")
        var inWrite = 0
        for _ in 0..<20 {
            let call = ((try? String(contentsOfFile: "/proc/\(pid)/task/\(tid)/syscall", encoding: .utf8)) ?? "").split(separator: " ").first
            if call == "1" { inWrite += 1 }
            usleep(50_000)
        }
        #expect(inWrite < 20, "vcpu0 waits in write(2) on the unread terminal")
        let terminal = open(path, O_RDWR | O_NOCTTY | O_NONBLOCK)
        try #require(terminal >= 0)
        defer { close(terminal) }
        var buffer = [UInt8](repeating: 0, count: 65536)
        while read(terminal, &buffer, buffer.count) > 0 {}
        var fresh = 0
        #expect(eventually(5) {
            let n = read(terminal, &buffer, buffer.count)
            if n > 0 { fresh += n }
            return fresh > 0
        }, "the guest stopped once nobody read its terminal")
        #expect(vmm.isRunning)
    }
}

extension EndToEndTests {
    @Test("--serial socket=: a client gets the console both ways, a reconnect takes over, nobody connected drops the output; the socket goes at exit, also after the drop to --user")
    func serialSocket() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("serial-\(getpid()).sock").path
        let null = open("/dev/null", O_RDWR)
        defer { close(null) }
        // As nobody when the tests can: the socket is still the VMM's to remove at exit (sticky /tmp).
        let user = getuid() == 0 ? ["--user", "nobody"] : []
        let vmm = try Child(VMM.binary, ["--kernel", try Guests.path("echo"), "--serial", "socket=\(path)", "--console", "off"] + user,
                            stdin: null, stdout: null, stderr: null)
        defer { if vmm.isRunning { vmm.terminate() }; vmm.waitUntilExit() }
        #expect(eventually(10) { FileManager.default.fileExists(atPath: path) })
        func exchange(_ client: Int32, _ text: String, until expected: String) -> String {
            _ = text.withCString { write(client, $0, strlen($0)) }
            var got = ""
            var buffer = [UInt8](repeating: 0, count: 256)
            _ = eventually(10) {
                var p = pollfd(fd: client, events: Int16(POLLIN), revents: 0)
                if poll(&p, 1, 50) == 1 {
                    let n = read(client, &buffer, buffer.count)
                    if n > 0 { got += String(decoding: buffer[0..<n], as: UTF8.self) }
                }
                return got.contains(expected)
            }
            return got
        }
        // The guest printed its prompt before anyone connected: it went nowhere.
        usleep(300_000)
        let first = UnixSocket.connect(path)
        try #require(first >= 0)
        #expect(exchange(first, "ab", until: "ab") == "ab")
        close(first)
        let second = UnixSocket.connect(path)
        try #require(second >= 0)
        defer { close(second) }
        #expect(exchange(second, "cd", until: "cd") == "cd", "the reconnected client gets the console")
        _ = write(second, "\n", 1)
        #expect(eventually(10) { !vmm.isRunning })
        #expect(vmm.terminationStatus == 0)
        #expect(!FileManager.default.fileExists(atPath: path))
    }
}
