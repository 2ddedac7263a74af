import Foundation
@testable import Hypervisor
import Testing

/// What an API client, a path, a size or a guest can do to a confined VMM:
/// each must end in an answer or one line and exit 1, never a crash, a
/// hang or a seccomp kill.
@Suite("Robustness against clients, paths, sizes and guests", .enabled(if: Host.hasKVM, Host.kvmSkipReason), .serialized)
struct RobustnessTests {
    static let isRoot = getuid() == 0

    /// The hardened launch: filters, Landlock, and (as root) the drop to nobody.
    static var confined: [String] { ["--seccomp", "true", "--landlock"] + (isRoot ? ["--user", "nobody"] : []) }

    /// A deterministic generator, so that a failure can be replayed.
    struct Random {
        var state: UInt64
        mutating func next() -> UInt64 {
            state ^= state << 13
            state ^= state >> 7
            state ^= state << 17
            return state
        }
        mutating func below(_ n: Int) -> Int { Int(next() % UInt64(n)) }
        /// Log-uniform in 1...limit: every order of magnitude as often.
        mutating func size(upTo limit: Int) -> Int {
            let bits = below(Int(log2(Double(limit))) + 1)
            return min(limit, (1 << bits) + below(1 << bits))
        }
    }

    /// One request in the shapes a hostile client sends, every size up to
    /// the server's limits: framed so that the next request still parses.
    static func request(_ random: inout Random, large: Bool) -> [UInt8] {
        func put(_ endpoint: String, _ body: [UInt8]) -> [UInt8] {
            Array("PUT /api/v1/\(endpoint) HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: \(body.count)\r\n\r\n".utf8) + body
        }
        if large {
            let size = random.size(upTo: HTTPRequest.maxBodyBytes - 16)
            switch random.below(3) {
            case 0: return put("vm.create", Array(repeating: UInt8(ascii: "["), count: size))
            case 1:
                var body = Array("[".utf8)
                while body.count < size - 16 { body += Array("{\"a\":\(random.below(1000))},".utf8) }
                return put("vm.create", body + Array("{}]".utf8))
            default: return put("vm.create", Array("{\"payload\":{\"kernel\":\"".utf8) + Array(repeating: UInt8(ascii: "k"), count: size) + Array("\"}}".utf8))
            }
        }
        switch random.below(100) {
        case ..<40: return Array("GET /api/v1/vmm.ping HTTP/1.1\r\n\r\n".utf8)
        case ..<55: return Array("GET /api/v1/vm.info HTTP/1.1\r\n\r\n".utf8)
        case ..<60: return Array("GET /api/v1/vm.counters HTTP/1.1\r\nHost: localhost\r\n\r\n".utf8)
        case ..<75:
            let junk = (0..<random.size(upTo: 4096)).map { _ in UInt8(truncatingIfNeeded: random.next() % 95 + 32) }
            return put("vm.create", junk)
        case ..<85: return put("vm.add-disk", Array("{\"path\":\"/nonexistent/soak\",\"queue_size\":100}".utf8))
        case ..<90:
            let pad = String(repeating: "p", count: random.size(upTo: HTTPRequest.maxHeaderBytes - 200))
            return Array("GET /api/v1/vmm.ping HTTP/1.1\r\nX-Pad: \(pad)\r\n\r\n".utf8)
        case ..<95: return Array("GET /api/v1/vm.nothing HTTP/1.1\r\n\r\n".utf8)
        default: return put("vm.resize", Array("{\"desired_vcpus\":0}".utf8))
        }
    }

    /// What ends a connection: the server refuses it and closes.
    static let malformed: [[UInt8]] = [
        Array("PUT /api/v1/vm.create HTTP/1.1\r\nContent-Length: -1\r\n\r\n".utf8),
        Array("GET /api/v1/vmm.ping HTTP/2.0\r\n\r\n".utf8),
        Array("GET /api/v1/vmm.ping HTTP/1.1\r\nX: ".utf8) + Array(repeating: UInt8(ascii: "x"), count: HTTPRequest.maxHeaderBytes + 10),
        Array("PUT /api/v1/vm.create HTTP/1.1\r\nContent-Length: 2000000\r\n\r\n".utf8),
        Array("\u{0}\u{1}\u{2} garbage\r\n\r\n".utf8),
    ]

    /// Writes `bytes` on a new connection while reading whatever comes
    /// back, half-closes, and reads until the server closes; the number of
    /// answers. Bounded by `seconds`.
    static func exchange(_ socket: String, _ bytes: [UInt8], seconds: Double = 60) -> Int {
        let fd = APIVMM.connect(socket)
        guard fd >= 0 else { return -1 }
        defer { close(fd) }
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
        var offset = 0
        var answers = 0
        var tail: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        let deadline = Date().addingTimeInterval(seconds)
        var halfClosed = false
        while Date() < deadline {
            if offset == bytes.count && !halfClosed {
                shutdown(fd, Int32(SHUT_WR))
                halfClosed = true
            }
            var poller = pollfd(fd: fd, events: Int16(POLLIN) | (offset < bytes.count ? Int16(POLLOUT) : 0), revents: 0)
            guard poll(&poller, 1, 100) >= 0 else { break }
            if poller.revents & Int16(POLLOUT) != 0 {
                let n = bytes[offset...].withUnsafeBytes { send(fd, $0.baseAddress, min($0.count, 1 << 16), Int32(MSG_NOSIGNAL)) }
                if n > 0 { offset += n } else if n < 0 && errno != EAGAIN { offset = bytes.count }
            }
            if poller.revents & Int16(POLLIN | POLLHUP | POLLERR) != 0 {
                let n = read(fd, &chunk, chunk.count)
                if n <= 0 && !(n < 0 && errno == EAGAIN) { break }
                if n > 0 {
                    // Count status lines (no JSON answer holds one), across reads too.
                    let seen = tail + chunk[0..<n]
                    let marker = Array("HTTP/1.1 ".utf8)
                    var i = 0
                    while i + marker.count <= seen.count {
                        if seen[i] == marker[0] && seen[i..<(i + marker.count)].elementsEqual(marker) {
                            answers += 1
                            i += marker.count
                        } else {
                            i += 1
                        }
                    }
                    tail = Array(seen.suffix(min(seen.count, marker.count - 1)))
                }
            }
        }
        return answers
    }

    static func resident(_ pid: pid_t) -> Int {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
              let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }) else { return -1 }
        return Int(line.split(separator: " ")[1]) ?? -1
    }

    static func descriptors(_ pid: pid_t) -> Int {
        (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd").count) ?? -1
    }

    @Test("soak: the API fuzz corpus and 100,000 generated requests of every size up to the limits against a confined VMM")
    func apiSoak() throws {
        // In sticky /tmp: as nobody, the VMM may remove only a file it owns.
        let socket = "/tmp/ch-soak-\(getpid()).sock"
        let vmm = try APIVMM(["--kernel", try Guests.path("ticker"), "--serial", "tty", "--console", "off"] + Self.confined,
                             socketPath: socket)
        let pid = vmm.child.processIdentifier
        #expect(eventually(10) { ticks(vmm) >= 1 })
        let baseline = (rss: Self.resident(pid), fds: Self.descriptors(pid))

        // Sixteen clients that send half a header and wait: each costs a slot, not the service.
        let idle = (0..<16).map { _ -> Int32 in
            let fd = APIVMM.connect(socket)
            let partial = Array("PUT /api/v1/vm.create HTTP/1.1\r\nX: ".utf8) + Array(repeating: UInt8(ascii: "y"), count: 15_000)
            _ = partial.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            return fd
        }
        defer { idle.forEach { close($0) } }

        // The shapes that once killed the API thread through its filter
        // (glibc shrinking a per-thread heap opened /proc/sys/vm/overcommit_memory).
        func put(_ body: [UInt8]) -> [UInt8] {
            Array("PUT /api/v1/vm.create HTTP/1.1\r\nContent-Length: \(body.count)\r\n\r\n".utf8) + body
        }
        for _ in 0..<3 {
            _ = Self.exchange(socket, put(Array("{\"x\":\"".utf8) + Array(repeating: UInt8(ascii: "a"), count: 1_000_000) + Array("\"}".utf8)))
        }
        _ = Self.exchange(socket, put(Array(("[" + (0..<20_000).map { "{\"a\":\($0)}" }.joined(separator: ",") + "]").utf8)))
        _ = Self.exchange(socket, put(Array(repeating: UInt8(ascii: "["), count: 50_000)))
        _ = Self.exchange(socket, Array(String(repeating: "GET /api/v1/vm.info HTTP/1.1\r\n\r\n", count: 30_000).utf8))
        #expect(vmm.child.isRunning, "the VMM died: \(vmm.stderr)")

        let corpus = Guests.repository.appendingPathComponent("fuzz/corpus/api")
        for name in try FileManager.default.contentsOfDirectory(atPath: corpus.path).sorted() {
            let bytes = try [UInt8](Data(contentsOf: corpus.appendingPathComponent(name)))
            _ = Self.exchange(socket, bytes, seconds: 10)
        }
        // The corpus pauses the VM among other things.
        if vmm.state == "Paused" { #expect(vmm.curl("PUT", "vm.resume").status == 204) }

        var random = Random(state: 0x5eed_cafe_f00d)
        var sent = 0, answered = 0
        let perConnection = 500
        for batch in 0..<(100_000 / perConnection) {
            var bytes: [UInt8] = []
            for i in 0..<perConnection {
                bytes += Self.request(&random, large: (batch * perConnection + i) % 500 == 499)
            }
            sent += perConnection
            if batch % 10 == 9 { bytes += Self.malformed[random.below(Self.malformed.count)] }
            answered += Self.exchange(socket, bytes)
            #expect(vmm.child.isRunning, "the VMM died after \(sent) requests: \(vmm.stderr)")
            if !vmm.child.isRunning { return }
        }
        #expect(answered >= 100_000, "\(answered) answers to \(sent) requests")

        // The guest and the service live on, nothing leaked, nothing killed.
        #expect(!vmm.stderr.contains("seccomp"), "\(vmm.stderr)")
        let after = ticks(vmm)
        #expect(eventually(10) { ticks(vmm) > after }, "the guest stopped")
        #expect(vmm.curl("GET", "vmm.ping").status == 200)
        idle.forEach { shutdown($0, Int32(SHUT_RDWR)) }
        #expect(eventually(5) { Self.descriptors(pid) <= baseline.fds + 1 }, "descriptors: \(Self.descriptors(pid)) after, \(baseline.fds) before")
        let grown = Self.resident(pid) - baseline.rss
        #expect(grown < 64 << 10, "resident memory grew by \(grown) KiB")
        #expect(vmm.shutdown() == 0, "\(vmm.stderr)")
        #expect(access(socket, F_OK) != 0, "the socket file outlived the VMM")
    }

    @Test("soak: a guest churning random descriptor tables, resets, decoding and MSI-X on every device thread under its filter")
    func deviceSoak() throws {
        let disk = FileManager.default.temporaryDirectory.appendingPathComponent("churn-\(getpid()).raw").path
        _ = FileManager.default.createFile(atPath: disk, contents: Data(count: 4 << 20))
        defer { try? FileManager.default.removeItem(atPath: disk) }
        let r = runVMM(["--kernel", try Guests.path("churn"), "--serial", "tty", "--console", "null", "--memory", "size=64M",
                        "--disk", "path=\(disk)"] + Self.confined, timeout: 120)
        #expect(r.status == 0 && !r.timedOut, "\(r.stderr)")
        #expect(r.stdout.contains("churn done\n") && r.stdout.contains("rng ok after churn\n"), "\(r.stdout)")
        #expect(!r.stderr.contains("seccomp"), "\(r.stderr)")
        // Guest-triggered warnings are rate limited: a few lines a second, not one per round.
        #expect(r.stderr.split(separator: "\n").count < 200, "\(r.stderr.split(separator: "\n").count) lines")
    }

    @Test("a client pipelining thousands of requests does not hold up another's vmm.ping")
    func fairness() throws {
        let vmm = try APIVMM(["--kernel", try Guests.path("ticker"), "--serial", "tty", "--console", "off"])
        let socket = vmm.socket
        // The greedy client sends 20,000 requests back to back and reads its answers as they come.
        let greedy = Thread {
            _ = Self.exchange(socket, Array(String(repeating: "GET /api/v1/vm.info HTTP/1.1\r\n\r\n", count: 20_000).utf8), seconds: 120)
        }
        greedy.start()
        usleep(200_000)
        let client = CloudHypervisorClient(socket: vmm.socket)
        for _ in 0..<5 {
            let start = Date()
            let answer = try client.request("GET", "vmm.ping")
            #expect(answer.status == 200)
            #expect(Date().timeIntervalSince(start) < 1, "vmm.ping waited \(Date().timeIntervalSince(start)) s behind a pipelining client")
        }
        while !greedy.isFinished { usleep(100_000) }
        #expect(vmm.shutdown() == 0)
    }

    @Test("a FIFO, a directory or the wrong kind of file as a path: one line and exit 1, at once")
    func paths() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("paths-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let fifo = dir.appendingPathComponent("fifo").path
        try #require(mkfifo(fifo, 0o600) == 0)
        let empty = dir.appendingPathComponent("empty").path
        _ = FileManager.default.createFile(atPath: empty, contents: Data())
        let kernel = try Guests.path("hello")
        let cases: [([String], String)] = [
            (["--kernel", fifo], "--kernel: cannot read '\(fifo)': is a FIFO, not a regular file"),
            (["--kernel", kernel, "--initramfs", fifo], "--initramfs: cannot read '\(fifo)': is a FIFO, not a regular file"),
            (["--kernel", kernel, "--initramfs", dir.path], "--initramfs: cannot read '\(dir.path)': is a directory, not a regular file"),
            (["--kernel", kernel, "--initramfs", "/dev/zero"], "--initramfs: cannot read '/dev/zero': is a character device, not a regular file"),
            (["--kernel", kernel, "--serial", "file=\(fifo)"], "--serial file: invalid value '\(fifo)': is a FIFO or socket with nothing at its other end"),
            (["--kernel", kernel, "--console", "file=\(fifo)"], "--console file: invalid value '\(fifo)': is a FIFO or socket with nothing at its other end"),
            (["--kernel", kernel, "--log-file", fifo], "--log-file: invalid value '\(fifo)': is a FIFO or socket with nothing at its other end"),
            (["--kernel", kernel, "--rng", "src=\(fifo)"], "--rng src: invalid value '\(fifo)': is a FIFO, not a character device or a regular file"),
            (["--kernel", kernel, "--rng", "src=\(dir.path)"], "--rng src: invalid value '\(dir.path)': is a directory"),
            (["--kernel", kernel, "--rng", "src=\(empty)"], "--rng src: invalid value '\(empty)': is empty"),
        ]
        for (arguments, message) in cases {
            let r = runVMM(arguments, timeout: 10)
            #expect(!r.timedOut && r.status == 1, "\(arguments): \(r.status) \(r.stderr)")
            #expect(r.stderr.hasPrefix("cloud-hypervisor: error: \(message)"), "\(arguments): \(r.stderr)")
            #expect(r.stderr.filter { $0 == "\n" }.count == 1, "one line: \(r.stderr)")
        }

        // Through the API: the boot fails with an answer, and the API keeps serving.
        let vmm = try APIVMM([])
        let body = APITests.createBody.replacingOccurrences(of: "KERNEL", with: fifo)
        #expect(vmm.curl("PUT", "vm.create", body: body).status == 204)
        let start = Date()
        let boot = vmm.curl("PUT", "vm.boot")
        #expect(boot.status >= 400 && boot.body.contains("is a FIFO"), "\(boot.status) \(boot.body)")
        #expect(Date().timeIntervalSince(start) < 5)
        #expect(vmm.curl("GET", "vmm.ping").status == 200)
        #expect(vmm.shutdown() == 0)
    }

    @Test("a socket path whose owner lives but does not accept is refused at once, not waited on")
    func liveSocketNotAccepting() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("busy-\(getpid()).sock").path
        unlink(path)
        defer { unlink(path) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: path.utf8) }
        let listener = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(listener) }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        try #require(bound == 0 && listen(listener, 0) == 0)
        // Fill its backlog: the owner never accepts, as a stopped VMM would not.
        var clients: [Int32] = []
        defer { clients.forEach { close($0) } }
        for _ in 0..<8 {
            let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
            clients.append(fd)
            let r = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
            }
            if r != 0 { break }
        }
        let r = runVMM(["--api-socket", path, "--kernel", try Guests.path("hello")], timeout: 10)
        #expect(!r.timedOut && r.status == 1, "\(r.stderr)")
        #expect(r.stderr == "cloud-hypervisor: error: --api-socket: \(path) is in use by a live process: stop it or choose another path\n")
    }

    @Test("20000G of RAM, reserved ids, a NUL in a path, a closed descriptor, a suffix not taken: each one clear line")
    func sizesAndNames() throws {
        let hello = try Guests.path("hello")
        let huge = runVMM(["--kernel", hello, "--memory", "size=20000G"], timeout: 30)
        #expect(huge.status == 1 && !huge.stderr.contains("double free"), "\(huge.stderr)")
        #expect(huge.stderr.hasPrefix("cloud-hypervisor: error: --memory size=20000G: map"), "\(huge.stderr)")
        #expect(huge.stderr.filter { $0 == "\n" }.count == 1, "one line: \(huge.stderr)")

        let reserved = runVMM(["--kernel", hello, "--disk", "path=/dev/null,id=__rng"])
        #expect(reserved.status == 1)
        #expect(reserved.stderr == "cloud-hypervisor: error: --disk id: invalid value '__rng': ids beginning with __ are reserved for the VMM's own devices\n")
        let closedFD = runVMM(["--kernel", hello, "--api-socket", "fd=99"])
        #expect(closedFD.stderr == "cloud-hypervisor: error: --api-socket fd=99: the descriptor is not open in the VMM: the caller must pass it open, without O_CLOEXEC\n")
        let suffix = runVMM(["--kernel", hello, "--memory", "size=1G,hotplug_size=17000G"])
        #expect(suffix.stderr.contains("at most 16384G"), "\(suffix.stderr)")
        if Self.isRoot {
            let lo = runVMM(["--kernel", hello, "--net", "tap=lo"])
            #expect(lo.stderr == "cloud-hypervisor: error: --net tap=lo: an existing network interface that is not a tap: name a tap, or a new name for one to be created\n")
        }

        // The same through the API: answers, and the VMM serves on.
        let vmm = try APIVMM([])
        let body = APITests.createBody.replacingOccurrences(of: "KERNEL", with: hello)
        let big = body.replacingOccurrences(of: "\"size\":268435456", with: "\"size\":\(20000 << 30)")
        #expect(vmm.curl("PUT", "vm.create", body: big).status == 204)
        let boot = vmm.curl("PUT", "vm.boot")
        #expect(boot.status >= 400 && boot.body.contains("--memory size=20000G"), "\(boot.status) \(boot.body)")
        #expect(vmm.curl("GET", "vmm.ping").status == 200)
        #expect(vmm.curl("PUT", "vm.delete").status == 204)
        let nul = vmm.curl("PUT", "vm.create", body: body.replacingOccurrences(of: hello, with: hello + "\\u0000.x"))
        #expect(nul.status == 400 && nul.body.contains("NUL"), "\(nul.body)")
        #expect(vmm.curl("PUT", "vm.create", body: body).status == 204)
        let hidden = vmm.curl("PUT", "vm.add-disk", body: "{\"path\":\"/dev/null\",\"id\":\"__rng\"}")
        #expect(hidden.status == 400 && hidden.body.contains("reserved"), "\(hidden.body)")
        #expect(vmm.shutdown() == 0)
    }
}
