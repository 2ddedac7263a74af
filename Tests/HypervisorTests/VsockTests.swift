import Foundation
import Testing

/// UNIX stream sockets for the host side of the hybrid vsock.
enum UnixSocket {
    static func address(_ path: String) -> sockaddr_un {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: path.utf8) }
        return address
    }

    static func listen(_ path: String, backlog: Int32 = 8) -> Int32 {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        var address = address(path)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        return bound == 0 && Glibc.listen(fd, backlog) == 0 ? fd : -1
    }

    static func connect(_ path: String) -> Int32 {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        var address = address(path)
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        if connected != 0 { close(fd) }
        return connected == 0 ? fd : -1
    }

    /// Waits up to `seconds` for `fd` to be readable.
    static func wait(_ fd: Int32, _ seconds: Double) -> Bool {
        var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        return poll(&p, 1, Int32(seconds * 1000)) == 1
    }

    /// Reads until `count` bytes, the end of the stream, or `seconds` pass.
    static func read(_ fd: Int32, _ count: Int, _ seconds: Double = 10) -> [UInt8] {
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        let deadline = Date().addingTimeInterval(seconds)
        while bytes.count < count, Date() < deadline, wait(fd, deadline.timeIntervalSinceNow) {
            let n = Glibc.read(fd, &chunk, min(chunk.count, count - bytes.count))
            if n <= 0 { break }
            bytes += chunk[0..<n]
        }
        return bytes
    }

    /// Reads through the first newline, a byte at a time.
    static func line(_ fd: Int32, _ seconds: Double = 10) -> String {
        var bytes: [UInt8] = []
        while bytes.last != 10, bytes.count < 64 {
            let one = read(fd, 1, seconds)
            guard let byte = one.first else { break }
            bytes.append(byte)
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}

/// The virtio-vsock and its hybrid host socket, with a tiny guest driving
/// the device's side of the protocol (Guests/vsock.c).
@Suite("virtio-vsock", .enabled(if: Host.hasKVM, Host.kvmSkipReason))
struct VsockTests {
    @Test("streams both ways through the hybrid socket under seccomp: CONNECT/OK, <socket>_<port>, refused port, unknown stream, a reset before a slow client has read (all of it still delivered), credit, shutdowns")
    func streams() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("vsock-\(getpid())").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let socket = dir + "/v.sock"
        let service = UnixSocket.listen(socket + "_5000")
        try #require(service >= 0)
        defer { close(service) }
        let slowService = UnixSocket.listen(socket + "_5002")
        try #require(slowService >= 0)
        defer { close(slowService) }
        var fromGuest: [UInt8] = [], afterReset: [UInt8] = []
        var okLine = "", pong: [UInt8] = []
        let pattern = (0..<10000).map { UInt8(truncatingIfNeeded: $0 * 7) }
        let r = runVMM(["--kernel", try Guests.path("vsock"), "--serial", "tty", "--console", "off", "--memory", "size=64M",
                        "--vsock", "cid=42,socket=\(socket)", "-v"]) { _, output in
            // The guest's stream to port 5000: its data, then its shutdown as the end of the stream.
            if UnixSocket.wait(service, 10) {
                let peer = accept(service, nil, nil)
                fromGuest = UnixSocket.read(peer, 100)
                close(peer)
            }
            // A client that reads only after the guest has reset the stream.
            if UnixSocket.wait(slowService, 10) {
                let peer = accept(slowService, nil, nil)
                _ = eventually(10) { output().contains("reset 5002 sent\n") }
                usleep(300_000)
                afterReset = UnixSocket.read(peer, 256 * 1024)
                close(peer)
            }
            guard eventually(10, { output().contains("listening\n") }) else { return }
            let client = UnixSocket.connect(socket)
            guard client >= 0 else { return }
            _ = "CONNECT 1024\n".withCString { write(client, $0, 13) }
            okLine = UnixSocket.line(client)
            _ = pattern.withUnsafeBytes { write(client, $0.baseAddress, $0.count) }
            pong = UnixSocket.read(client, 4)
            close(client)
            _ = eventually(10) { output().contains("vsock done\n") }
        }
        #expect(r.status == 0, "\(r.stderr)")
        #expect(String(decoding: fromGuest, as: UTF8.self) == "hello from guest")
        let sent = (0..<(256 * 1024)).map { UInt8(truncatingIfNeeded: $0) &* 13 }
        #expect(afterReset.count == sent.count && afterReset == sent, "\(afterReset.count) of \(sent.count) bytes")
        #expect(okLine.hasPrefix("OK ") && okLine.hasSuffix("\n") && (UInt32(okLine.dropFirst(3).dropLast()) ?? 0) >= 1 << 30, "\(okLine)")
        #expect(String(decoding: pong, as: UTF8.self) == "pong")
        let sum = pattern.reduce(UInt32(0)) { $0 + UInt32($1) }
        let hex = { (v: UInt32) in "0x" + String(repeating: "0", count: 8 - String(v, radix: 16).count) + String(v, radix: 16) }
        for line in ["cid 0x0000002a", "connect 5000: ok op 0x00000002", "shutdown 5000: ok op 0x00000003",
                     "connect 5001: ok op 0x00000003", "unknown stream: ok op 0x00000003", "connect 5002: ok op 0x00000002", "request from a host port",
                     "credit request after 4096 bytes", "received \(hex(10000)) sum \(hex(sum))",
                     "host closed: flags 0x00000003", "vsock done"] {
            #expect(r.stdout.contains(line + "\n"), "missing '\(line)': \(r.stdout)")
        }
        #expect(r.stderr.contains("virtio-vsock: CID 42, host socket \(socket), at 0000:00:01.0"), "\(r.stderr)")
        #expect(!FileManager.default.fileExists(atPath: socket), "the socket file goes with the VMM")
    }
}

extension VsockTests {
    @Test("under --landlock the vsock's socket still goes with the VMM", .enabled(if: LandlockSupport.available, LandlockSupport.skipReason))
    func socketRemovedUnderLandlock() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("vsock-landlock-\(getpid())").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let r = runVMM(["--kernel", try Guests.path("hello"), "--serial", "tty", "--console", "off", "--landlock",
                        "--vsock", "cid=3,socket=\(dir)/v.sock"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(!FileManager.default.fileExists(atPath: dir + "/v.sock"))
    }
}

extension VsockTests {
    @Test("streams the guest resets before their client has read them, twice up to the stream limit: each holds a slot until its client goes, then nothing is left (descriptors and memory flat across rounds)")
    func resetChurn() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("vsock-reset-\(getpid())").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let socket = dir + "/v.sock"
        // Room for every stream the guest opens before the test accepts it.
        let service = UnixSocket.listen(socket + "_5003", backlog: 2048)
        try #require(service >= 0)
        defer { close(service) }
        var clients: [Int32] = []
        defer { clients.forEach { close($0) } }
        var baseline = (fds: -1, rss: -1), held: [Int] = [], connected: [Int] = [], fdsAfter: [Int] = [], rssAfter: [Int] = []
        // The VMM's streams: its sockets but the listening one.
        func streams(_ pid: pid_t) -> Int {
            let fds = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd")) ?? []
            return fds.filter { ((try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/fd/\($0)")) ?? "").hasPrefix("socket:") }.count - 1
        }
        let r = runVMM(["--kernel", try Guests.path("vsock_reset"), "--serial", "tty", "--console", "off", "--memory", "size=64M",
                        "--vsock", "cid=42,socket=\(socket)"], timeout: 120) { child, output in
            let pid = child.processIdentifier
            guard eventually(10, { output().contains("vsock reset start\n") }) else { return }
            baseline = (RobustnessTests.descriptors(pid), RobustnessTests.resident(pid))
            // Accepted as they come, never read (a round's first is sent the
            // guest's go); closed once the guest says a round is over.
            let deadline = Date().addingTimeInterval(100)
            var round = 1
            while Date() < deadline, child.isRunning {
                if UnixSocket.wait(service, 0.01) {
                    let fd = accept(service, nil, nil)
                    guard fd >= 0 else { continue }
                    _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
                    if clients.isEmpty { _ = write(fd, "g", 1) }
                    clients.append(fd)
                    continue
                }
                if round <= 2 && output().contains("round \(round): ") {
                    held.append(streams(pid))
                    connected.append(clients.count)
                    clients.forEach { close($0) }
                    clients = []
                    // The device lets the streams go as it sees their clients
                    // close; the guest's next stream may be open already.
                    _ = eventually(10) { RobustnessTests.descriptors(pid) <= baseline.fds + 1 }
                    fdsAfter.append(RobustnessTests.descriptors(pid))
                    rssAfter.append(RobustnessTests.resident(pid))
                    round += 1
                }
                if output().contains("vsock reset done\n") { break }
            }
            _ = eventually(10) { !child.isRunning }
        }
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("vsock reset done\n"), "\(r.stdout)")
        // With descriptors to spare the limit is the stream limit (1023, as
        // in Cloud Hypervisor and Firecracker); the second round gets as many
        // streams as the first: the first's were all let go.
        var files = rlimit()
        let limit = getrlimit(Int32(RLIMIT_NOFILE.rawValue), &files) == 0 && files.rlim_max >= 4096 ? 1023 : nil
        let counts: [Int] = ["round 1: ", "round 2: "].compactMap { (prefix: String) -> Int? in
            guard let line = r.stdout.split(separator: "\n").first(where: { $0.hasPrefix(prefix) }) else { return nil }
            return Int(line.dropFirst(prefix.count + 2).prefix(8), radix: 16)
        }
        #expect(counts.count == 2 && counts[0] == counts[1] && counts[0] <= 1023, "\(r.stdout)")
        if let limit { #expect(counts.first == limit, "\(r.stdout)") }
        // Each round's streams were all held at its end (a descriptor each),
        // and a refused one never reached the host service.
        #expect(held == counts && connected == counts, "held \(held), connected \(connected), accepted \(counts)")
        #expect(fdsAfter.count == 2 && fdsAfter.allSatisfy { $0 <= baseline.fds + 1 }, "descriptors: \(fdsAfter) after each round, \(baseline.fds) before")
        // Each round's buffers (up to 256 KiB for each of a thousand streams)
        // went back to the system when their streams went, not into the
        // VMM's heap.
        #expect(rssAfter.count == 2 && rssAfter.allSatisfy { $0 - baseline.rss < 16 << 10 },
                "resident after each round: \(rssAfter) KiB, \(baseline.rss) before")
    }
}
