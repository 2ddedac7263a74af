import CVMMCore
import Foundation
@testable import Hypervisor
import Testing

@Suite("--net: parsing, validation and taps")
struct NetConfigTests {
    @Test("Cloud Hypervisor's defaults, the docs' empty form, and every key")
    func parsing() throws {
        let bare = try NetConfig(parsing: "tap=,mac=,ip=,mask=")
        #expect(bare == NetConfig())
        #expect(bare.numQueues == 2 && bare.queueSize == 256 && bare.offloadTSO && bare.offloadUFO && bare.offloadCsum)
        let full = try NetConfig(parsing: "tap=tap0,mac=12:34:56:78:9A:bc,ip=192.168.249.1,mask=255.255.255.0,host_mac=02:00:00:00:00:01,num_queues=4,queue_size=128,mtu=9000,id=net0,offload_tso=off,offload_ufo=off,offload_csum=on,iommu=off,vhost_user=false")
        #expect(full.tap == "tap0" && full.mac?.description == "12:34:56:78:9a:bc" && full.ip?.description == "192.168.249.1")
        #expect(full.mask?.networkOrder == 0x00ff_ffff && full.hostMAC?.bytes == [2, 0, 0, 0, 0, 1])
        #expect(full.queuePairs == 2 && full.queueSize == 128 && full.mtu == 9000 && full.id == "net0" && !full.offloadTSO && !full.offloadUFO)
        #expect(try NetConfig(parsing: "fd=[3,4],num_queues=4").fds == [3, 4])
        #expect(try NetConfig(parsing: "fd=5").fds == [5])
        let random = MACAddress.random()
        #expect(random.bytes[0] & 0x03 == 0x02, "unicast, locally administered: \(random)")
    }

    @Test("bad values: one line naming the key and the fix", arguments: [
        ("mac=12:34:56:78:9a", "--net mac: invalid value '12:34:56:78:9a': expected six hexadecimal bytes"),
        ("ip=192.168.1", "--net ip: invalid value '192.168.1': expected an IPv4 address"),
        ("ip=10.0.0.1", "--net: ip= needs mask= too"),
        ("mask=255.255.255.0", "--net: mask= needs ip= too"),
        ("num_queues=3", "give an even number, at least 2"),
        ("num_queues=0", "--net num_queues: invalid value '0'"),
        ("queue_size=100", "must be a power of two"),
        ("mtu=576", "--net mtu: invalid value '576': expected a whole number from 1280 to 65535"),
        ("fd=[3,x]", "--net fd: invalid value '[3,x]'"),
        ("fd=[3,4]", "fd= gives 2 tap queue(s) for num_queues=2"),
        ("fd=[1]", "0, 1 and 2 are the standard streams"),
        ("fd=[3],tap=x", "give tap= or fd=, not both"),
        ("fd=[3],ip=10.0.0.1,mask=255.0.0.0", "with fd= the caller configures it"),
        ("offload_csum=off", "offload_tso and offload_ufo need offload_csum=on"),
        ("tap=sixteen-bytes-xx", "an interface name has at most 15 bytes"),
        ("vhost_user=on", "--net vhost_user=on is not supported yet"),
        ("socket=/tmp/s", "--net socket=/tmp/s is not supported yet"),
        ("bw_size=1000", "--net bw_size=1000 is not supported yet"),
        ("colour=blue", "--net: unknown key 'colour'"),
    ])
    func badValues(text: String, message: String) {
        #expect(throws: ConfigError.self) { try NetConfig(parsing: text) }
        do {
            _ = try NetConfig(parsing: text)
        } catch {
            #expect(error.description.contains(message), "\(error)")
        }
    }

    @Test("what takes the whole configuration: queue pairs per vCPU, multicast MAC, shared ids and descriptors")
    func validation() throws {
        func config(_ nets: [String], cpus: Int = 1) throws -> VMConfig {
            VMConfig(kernelPath: "k", cpus: try CPUsConfig(parsing: "boot=\(cpus)"), nets: try nets.map(NetConfig.init(parsing:)))
        }
        #expect(throws: ConfigError.self) { try config(["num_queues=4"]).validate() }
        #expect((try? config(["num_queues=4"], cpus: 2).validate()) != nil)
        #expect(throws: ConfigError.self) { try config(["mac=01:00:5e:00:00:01"]).validate() }
        #expect(throws: ConfigError.self) { try config(["id=a", "id=a"]).validate() }
        #expect(throws: ConfigError.self) { try config(["fd=[5]", "fd=[5]"]).validate() }
        #expect(try config(["fd=[5]", "fd=[6,7],num_queues=4"], cpus: 2).inheritedDescriptors == [5, 6, 7])
    }
}

/// Taps on this host, each VMM in a network namespace of its own
/// (`unshare -n`), so nothing touches the host's interfaces.
@Suite("--net on the host: taps made, configured and handed over", .enabled(if: Host.hasKVM, Host.kvmSkipReason))
struct NetHostTests {
    static let canMakeTaps = getuid() == 0 && access("/dev/net/tun", R_OK | W_OK) == 0
        && access("/usr/bin/unshare", X_OK) == 0 && access("/usr/bin/nsenter", X_OK) == 0

    /// Runs `command` in the network namespace of process `pid`.
    func inNamespace(of pid: pid_t, _ command: [String]) -> String {
        run("/usr/bin/nsenter", ["--net=/proc/\(pid)/ns/net"] + command).stdout
    }

    @Test("tap=, ip=, mask=, host_mac=, mtu=, four queues: configured before the drop to nobody, gone after; the device thread is SCHED_BATCH",
          .enabled(if: canMakeTaps, "needs root and /dev/net/tun"))
    func tapMadeAndConfigured() throws {
        var link = "", address = "", threads: [String] = [], vmm: pid_t = 0, policies: [String: Int] = [:]
        let r = run("/usr/bin/unshare", ["-n", "--", VMM.binary, "--kernel", try Guests.path("spin"), "--serial", "tty",
                                         "--console", "off", "--cpus", "2", "--seccomp", "true", "--user", "nobody",
                                         "--net", "tap=chtest0,ip=10.201.0.1,mask=255.255.255.0,host_mac=02:00:00:00:00:07,mtu=9000,num_queues=4"]) { child, output in
            _ = eventually(10) { output().contains("spinning") }
            vmm = child.processIdentifier
            link = inNamespace(of: vmm, ["ip", "-o", "link", "show", "chtest0"])
            address = inNamespace(of: vmm, ["ip", "-o", "-4", "addr", "show", "chtest0"])
            policies = threadPolicies(of: vmm)
            threads = Array(policies.keys)
            child.terminate()
        }
        #expect(r.status == 0, "\(r.stderr)")
        #expect(link.contains("mtu 9000") && link.contains("link/ether 02:00:00:00:00:07") && link.contains("UP"), "\(link)")
        #expect(link.contains("mq"), "one tap queue per pair, multi-queue: \(link)")
        #expect(address.contains("inet 10.201.0.1/24"), "\(address)")
        #expect(threads.contains("virtio-net0"), "\(threads)")
        // Its wakeups do not preempt a vCPU (SCHED_BATCH, 3), under its seccomp filter.
        #expect(policies["virtio-net0"] == 3, "\(policies)")
    }

    @Test("fd=: a tap the caller opened survives the descriptor sweep and is served; a pipe or a closed descriptor is refused",
          .enabled(if: canMakeTaps, "needs root and /dev/net/tun"))
    func handedOver() throws {
        let helper = Guests.repository.appendingPathComponent("lab/tests/tapfd.py").path
        let hello = try Guests.path("hello")
        let r = run("/usr/bin/unshare", ["-n", "--", "python3", helper, "chfd0", "10.202.0.1/24", "--", VMM.binary,
                                         "--kernel", hello, "--serial", "tty", "--console", "off", "-v", "--net", "fd=[{fd}],mac=12:34:56:78:90:ac"])
        #expect(r.status == 0 && r.stdout.hasPrefix("Hello from a tiny PVH guest"), "\(r.stderr)")
        #expect(r.stderr.contains("virtio-net0: tap chfd0, MAC 12:34:56:78:90:ac"), "\(r.stderr)")

        let pipe = run("/bin/bash", ["-c", "exec 7< <(sleep 5); exec \(VMM.binary) --kernel \(hello) --net fd=7"])
        #expect(pipe.status == 1)
        #expect(pipe.stderr == "cloud-hypervisor: error: --net fd=[7]: descriptor 7 is not a tap opened with IFF_TAP | IFF_NO_PI | IFF_VNET_HDR\n", "\(pipe.stderr)")
        let closed = runVMM(["--kernel", hello, "--net", "fd=1000"])
        #expect(closed.status == 1)
        #expect(closed.stderr == "cloud-hypervisor: error: --net fd=1000: the descriptor is not open in the VMM: the caller must pass it open, without O_CLOEXEC\n", "\(closed.stderr)")
    }

    @Test("a hostile guest: headers the tap refuses, a 128 KiB frame, short chains, nonsense control commands, a read-only receive buffer, a descriptor loop; the VMM lives and a reset device sends again",
          .enabled(if: canMakeTaps, "needs root and /dev/net/tun"))
    func hostileGuest() throws {
        let r = run("/usr/bin/unshare", ["-n", "--", VMM.binary, "--kernel", try Guests.path("hostile_net"), "--serial", "tty",
                                         "--console", "off", "--memory", "size=64M", "--net", "tap=,mac=12:34:56:78:90:ab"])
        #expect(r.status == 0, "\(r.stderr)")
        for line in ["mac 0x78563412 status 0x00000001", "refused frames returned",
                     "ctrl unknown 0x00000001 pairs0 0x00000001 pairs9 0x00000001 pairs1 0x00000000",
                     "read-only receive buffer returned empty", "device needs reset", "frame sent after reset"] {
            #expect(r.stdout.contains(line + "\n"), "missing '\(line)': \(r.stdout)")
        }
        #expect(r.stderr.contains("warning: virtio-net0: the guest's queue 1 has a descriptor loop or a chain too long"), "\(r.stderr)")
        #expect(r.stderr.split(separator: "\n").count == 1, "one line: \(r.stderr)")
    }

    @Test("mergeable receive buffers: a frame spread over four small buffers published together, a frame waiting until a full frame's worth of buffers is there; one buffer a frame without the feature, and a receive chain in more pieces than the device takes returned empty",
          .enabled(if: canMakeTaps, "needs root and /dev/net/tun"))
    func mergeableReceiveBuffers() throws {
        // Frames written into the tap from the VMM's namespace, as the host's stack would.
        func send(_ pid: pid_t, _ sizes: [Int]) {
            let script = """
                import socket, sys
                s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
                s.bind(("chmrg0", 0))
                for n in map(int, sys.argv[1:]):
                    s.send(b"\\xff" * 6 + b"\\x02\\x00\\x00\\x00\\x00\\x01" + b"\\x88\\xb5" + bytes(i & 0xff for i in range(n - 14)))
                """
            _ = inNamespace(of: pid, ["python3", "-c", script] + sizes.map(String.init))
        }
        // No IPv6 on the tap: its router solicitations would reach the guest too.
        let r = run("/usr/bin/unshare", ["-n", "--", "/bin/sh", "-c",
                                         "sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1 && exec \"$0\" \"$@\"",
                                         VMM.binary, "--kernel", try Guests.path("mrgrx"), "--serial", "tty", "--console", "off",
                                         "--memory", "size=64M", "--seccomp", "true", "--net", "tap=chmrg0,mac=12:34:56:78:90:ad"],
                timeout: 60) { child, output in
            guard eventually(10, { output().contains("mrgrx ready for two frames") }) else { return }
            _ = self.inNamespace(of: child.processIdentifier, ["ip", "link", "set", "chmrg0", "up"])
            send(child.processIdentifier, [1000, 100])
            guard eventually(30, { output().contains("mrgrx ready for one frame") }) else { return }
            send(child.processIdentifier, [1000])
            _ = eventually(10) { !child.isRunning }
        }
        #expect(r.status == 0, "\(r.stderr)")
        for line in ["mergeable buffers offered",
                     "first frame: num_buffers 0x00000004 lengths 0x00000100 0x00000100 0x00000100 0x000000f4 intact",
                     "second frame waits for buffers",
                     "second frame: num_buffers 0x00000001 lengths 0x00000070 intact",
                     "a receive chain of 300 pieces returned empty",
                     "without the feature: num_buffers 0x00000001 lengths 0x000003f4 intact"] {
            #expect(r.stdout.contains(line + "\n"), "missing '\(line)': \(r.stdout) \(r.stderr)")
        }
    }

    @Test("transmit interrupts are held as a NIC's moderation holds them: 32 frames sent one at a time are each completed at once, fewer interrupts come than frames, and the last held one still comes",
          .enabled(if: canMakeTaps, "needs root and /dev/net/tun"))
    func transmitInterruptsHeld() throws {
        let r = run("/usr/bin/unshare", ["-n", "--", VMM.binary, "--kernel", try Guests.path("txirq"), "--serial", "tty",
                                         "--console", "off", "--memory", "size=64M", "--seccomp", "true",
                                         "--net", "tap=,mac=12:34:56:78:90:ae"], timeout: 60)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("frames completed 0x00000020\n"), "\(r.stdout)")
        #expect(r.stdout.contains("held interrupt delivered\n"), "\(r.stdout)")
        let line = r.stdout.split(separator: "\n").first { $0.hasPrefix("interrupts while sending 0x") }
        let interrupts = line.flatMap { UInt32($0.dropFirst("interrupts while sending 0x".count), radix: 16) }
        #expect(interrupts.map { $0 < 32 } == true, "an interrupt per frame: \(r.stdout)")
        #expect(r.stderr.isEmpty, "\(r.stderr)")
    }

    @Test("an existing tap keeps the addresses its owner gave it, with Cloud Hypervisor's warning",
          .enabled(if: canMakeTaps, "needs root and /dev/net/tun"))
    func existingTap() throws {
        let script = "ip tuntap add chold0 mode tap && ip addr add 10.203.0.1/24 dev chold0 && "
            + "\(VMM.binary) --kernel \(try Guests.path("hello")) --net tap=chold0,ip=10.204.0.1,mask=255.255.255.0 && "
            + "ip -o -4 addr show chold0"
        let r = run("/usr/bin/unshare", ["-n", "--", "/bin/sh", "-c", script])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("inet 10.203.0.1/24") && !r.stdout.contains("10.204.0.1"), "\(r.stdout)")
        #expect(r.stderr.contains("warning: tap chold0 already exists: its IP configuration is left as it is"), "\(r.stderr)")
    }

    @Test("without CAP_NET_ADMIN a tap cannot be made: said so, before boot",
          .enabled(if: getuid() == 0 && access("/usr/bin/setpriv", X_OK) == 0, "needs root to drop to nobody with setpriv"))
    func noCapability() throws {
        let r = run("/usr/bin/setpriv", ["--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all", "--",
                                         VMM.binary, "--kernel", try Guests.path("hello"), "--net", "tap=chtest1"])
        #expect(r.status == 1)
        #expect(r.stderr.hasPrefix("cloud-hypervisor: error: --net tap=chtest1: creating or opening a tap needs CAP_NET_ADMIN"), "\(r.stderr)")
        #expect(r.stderr.filter { $0 == "\n" }.count == 1, "\(r.stderr)")
    }
}
