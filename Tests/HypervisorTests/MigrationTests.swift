import Foundation
import Testing

@testable import Hypervisor

/// The dirtier guest's sweeps ("s=<hex>"), and whether it found a page
/// that did not hold what it last wrote there.
private func sweeps(_ output: String) -> (numbers: [Int], bad: Bool) {
    let lines = output.split(separator: "\n")
    let numbers = lines.compactMap { $0.hasPrefix("s=") && $0.count == 10 ? Int($0.dropFirst(2), radix: 16) : nil }
    return (numbers, lines.contains { $0.hasPrefix("BAD") })
}

/// A destination that answers START and then does what `after` says with
/// the connection: what a destination dying half-way looks like.
private final class FakeDestination: @unchecked Sendable {
    let path: String
    private let listener: Int32

    init() throws {
        path = FileManager.default.temporaryDirectory.appendingPathComponent("mig-\(UUID().uuidString.prefix(8)).sock").path
        listener = UnixSocket.listen(path)
        guard listener >= 0 else { throw APIVMM.Failure(description: "listen at \(path)") }
    }

    deinit {
        close(listener)
        unlink(path)
    }

    /// Accepts and plays the destination's part to the end, but for its
    /// first 2.5 s takes RAM at about 16 MB/s, slower than the guest
    /// rewrites it: a migration with timeout_s=2 cannot converge and ends
    /// only by its timeout strategy (the rest then goes at full speed).
    func serveSlowly() {
        Thread.detachNewThread { [self] in
            let fd = accept(listener, nil, nil)
            guard fd >= 0 else { return }
            defer { close(fd) }
            func reply() {
                var ok: [UInt8] = [0x56, 0x4d, 0x4d, 0x47, 5, 0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]
                _ = send(fd, &ok, ok.count, Int32(MSG_NOSIGNAL))
            }
            var chunk = [UInt8](repeating: 0, count: 64 << 10)
            let slowUntil = Date().addingTimeInterval(2.5)
            while true {
                var header = [UInt8](repeating: 0, count: 16)
                guard recv(fd, &header, 16, Int32(MSG_WAITALL)) == 16 else { return }
                var left = header[8..<16].withUnsafeBytes { Int($0.loadUnaligned(as: UInt64.self)) }
                let kind = header[4]
                while left > 0 {
                    let n = recv(fd, &chunk, min(left, chunk.count), 0)
                    guard n > 0 else { return }
                    left -= n
                    if kind == 2 && Date() < slowUntil { usleep(4000) }
                }
                if kind == 1 && header[8..<16].withUnsafeBytes({ $0.loadUnaligned(as: UInt64.self) }) > 0 {
                    // START: the fds of nothing (this guest has no taps), then the answer.
                    reply()
                } else if kind == 3 {
                    reply()
                } else if kind == 4 {
                    reply()
                    return
                }
            }
        }
    }

    /// Accepts, reads START's header and payload, answers it, then reads
    /// `readBytes` of the RAM that follows and closes (or, with nil, keeps
    /// the connection open without reading, for `hold` seconds).
    func serve(readBytes: Int?, hold: Double = 0) {
        Thread.detachNewThread { [self] in
            let fd = accept(listener, nil, nil)
            guard fd >= 0 else { return }
            defer { close(fd) }
            var header = [UInt8](repeating: 0, count: 16)
            guard recv(fd, &header, 16, Int32(MSG_WAITALL)) == 16 else { return }
            let length = header[8..<16].withUnsafeBytes { Int($0.loadUnaligned(as: UInt64.self)) }
            var payload = [UInt8](repeating: 0, count: length)
            guard recv(fd, &payload, length, Int32(MSG_WAITALL)) == length else { return }
            var reply: [UInt8] = [0x56, 0x4d, 0x4d, 0x47, 5, 0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]
            _ = send(fd, &reply, reply.count, Int32(MSG_NOSIGNAL))
            if let readBytes {
                var chunk = [UInt8](repeating: 0, count: readBytes)
                _ = recv(fd, &chunk, readBytes, Int32(MSG_WAITALL))
            } else {
                Thread.sleep(forTimeInterval: hold)
            }
        }
    }
}

@Suite("Live migration", .serialized)
struct MigrationTests {
    func guest(_ name: String, memory: String = "size=128M") throws -> [String] {
        ["--kernel", try Guests.path(name), "--serial", "tty", "--console", "off", "--memory", memory, "--cpus", "boot=2"]
    }

    /// A guest rewriting 64 MiB may not converge on a loaded host: past
    /// 8 s the rest goes in the downtime (timeout_strategy=ignore), so the
    /// migration ends within the test client's 10 s, every page still checked.
    static let bounded = ",\"downtime_ms\":1000,\"timeout_s\":8,\"timeout_strategy\":\"Ignore\""

    /// receive-migration on `destination` in the background; its answer once done.
    private func receive(_ destination: APIVMM, _ url: String) -> () -> APIVMM.Answer? {
        let done = DispatchSemaphore(value: 0)
        nonisolated(unsafe) var answer: APIVMM.Answer?
        Thread.detachNewThread {
            answer = destination.curl("PUT", "vm.receive-migration", body: "{\"receiver_url\":\"\(url)\"}")
            done.signal()
        }
        return { done.wait(timeout: .now() + 30) == .success ? answer : nil }
    }

    private func migrate(_ url: (listen: String, connect: String), extra: String = "", memory: String = "size=128M",
                         sourceOptions: [String] = []) throws {
        let source = try APIVMM(try guest("dirtier", memory: memory) + sourceOptions)
        #expect(eventually(10) { sweeps(source.stdout).numbers.count >= 3 }, "\(source.stdout.suffix(200))")
        let destination = try APIVMM([])
        let received = receive(destination, url.listen)
        usleep(300_000)
        let sent = source.curl("PUT", "vm.send-migration", body: "{\"destination_url\":\"\(url.connect)\"\(extra)\(Self.bounded)}")
        #expect(sent.status == 204, "\(sent.body) \(source.stderr.suffix(500))")
        let answer = try #require(received(), "vm.receive-migration did not answer")
        #expect(answer.status == 204, "\(answer.body) \(destination.stderr.suffix(500))")
        // The source ends once the destination runs; the guest goes on there.
        // Not waited for when it still runs: the test fails, it does not hang.
        try #require(eventually(10) { !source.child.isRunning }, "the source still runs after the migration: \(source.stderr.suffix(500))")
        #expect(source.child.terminationStatus == 0)
        let last = try #require(sweeps(source.stdout).numbers.last)
        #expect(eventually(10) { sweeps(destination.stdout).numbers.count >= 5 }, "\(destination.stdout.suffix(300)) \(destination.stderr.suffix(500))")
        let moved = sweeps(destination.stdout)
        #expect(!moved.bad, "a page the guest wrote did not arrive: \(destination.stdout.suffix(300))")
        #expect(moved.numbers.first.map { $0 == last + 1 || $0 == last + 2 } == true,
                "the source's last sweep was \(last), the destination's first \(moved.numbers.first ?? -1)")
        #expect(destination.state == "Running")
        kill(destination.child.processIdentifier, SIGKILL)
    }

    @Test("A guest rewriting 64 MiB without pause moves over a UNIX socket: every page as last written, its count goes on, the source ends")
    func overUnixSocket() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("mig-\(UUID().uuidString.prefix(8)).sock").path
        try migrate(("unix:\(path)", "unix:\(path)"))
    }

    @Test("The same over TCP, from a source confined as nobody")
    func overTCP() throws {
        let port = 20000 + Int(getpid() % 20000)
        try migrate(("tcp:0.0.0.0:\(port)", "tcp:127.0.0.1:\(port)"),
                    sourceOptions: getuid() == 0 ? ["--seccomp", "true", "--user", "nobody"] : ["--seccomp", "true"])
    }

    @Test("local=on over a UNIX socket: the destination maps the source's shared RAM, nothing is copied")
    func localHandsRAMOver() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("mig-\(UUID().uuidString.prefix(8)).sock").path
        try migrate(("unix:\(path)", "unix:\(path)"), extra: ",\"local\":true", memory: "size=128M,shared=on")
    }

    @Test("A destination that dies half-way, or stops reading past timeout_s: the answer says so, the source runs on, and migrates fine afterwards")
    func failuresLeaveTheSourceRunning() throws {
        let source = try APIVMM(try guest("dirtier"))
        #expect(eventually(10) { sweeps(source.stdout).numbers.count >= 2 })
        let before = HotplugFootprint(source)

        let dying = try FakeDestination()
        dying.serve(readBytes: 1 << 20)
        let cut = source.curl("PUT", "vm.send-migration", body: "{\"destination_url\":\"unix:\(dying.path)\"}")
        #expect(cut.status == 500 && cut.body.contains("the destination closed the connection"), "\(cut.status) \(cut.body)")

        let stalled = try FakeDestination()
        stalled.serve(readBytes: nil, hold: 5)
        let late = source.curl("PUT", "vm.send-migration", body: "{\"destination_url\":\"unix:\(stalled.path)\",\"timeout_s\":1}")
        #expect(late.status == 500 && late.body.contains("timeout_s"), "\(late.status) \(late.body)")

        let count = sweeps(source.stdout).numbers.count
        #expect(eventually(10) { sweeps(source.stdout).numbers.count > count + 2 }, "the source stopped after a failed migration")
        #expect(source.state == "Running")
        #expect(!sweeps(source.stdout).bad)
        #expect(eventually(5) { HotplugFootprint(source) == before }, "after failed migrations: \(HotplugFootprint(source)) instead of \(before)")

        // Dirty logging was turned off and is turned on again: a real migration works.
        let destination = try APIVMM([])
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("mig-\(UUID().uuidString.prefix(8)).sock").path
        let received = receive(destination, "unix:\(path)")
        usleep(300_000)
        #expect(source.curl("PUT", "vm.send-migration", body: "{\"destination_url\":\"unix:\(path)\"\(Self.bounded)}").status == 204)
        #expect(try #require(received()).status == 204)
        #expect(eventually(10) { sweeps(destination.stdout).numbers.count >= 2 })
        #expect(!sweeps(destination.stdout).bad, "\(destination.stdout.suffix(200))")
        kill(destination.child.processIdentifier, SIGKILL)
    }

    @Test("A migration that cannot converge ends by its strategy: cancel keeps the guest here, ignore stops it and sends the rest")
    func timeoutStrategies() throws {
        let source = try APIVMM(try guest("dirtier"))
        #expect(eventually(10) { sweeps(source.stdout).numbers.count >= 2 })
        let fields = ",\"downtime_ms\":1,\"timeout_s\":2"
        let cancelling = try FakeDestination()
        cancelling.serveSlowly()
        let cancelled = source.curl("PUT", "vm.send-migration", body: "{\"destination_url\":\"unix:\(cancelling.path)\"\(fields),\"timeout_strategy\":\"Cancel\"}")
        #expect(cancelled.status == 500 && cancelled.body.contains("timeout_s"), "\(cancelled.status) \(cancelled.body)")
        let count = sweeps(source.stdout).numbers.count
        #expect(eventually(10) { sweeps(source.stdout).numbers.count > count }, "the guest stopped after a cancelled migration")

        let ignoring = try FakeDestination()
        ignoring.serveSlowly()
        let began = Date()
        let finished = source.curl("PUT", "vm.send-migration", body: "{\"destination_url\":\"unix:\(ignoring.path)\"\(fields),\"timeout_strategy\":\"Ignore\"}")
        #expect(finished.status == 204, "\(finished.status) \(finished.body)")
        #expect(Date().timeIntervalSince(began) >= 2, "it ended before timeout_s: it converged, so nothing was tested")
        #expect(eventually(10) { !source.child.isRunning }, "the source still runs after handing the VM over")
    }

    @Test("A disk's lock moves with the VM: the destination holds it once the source has gone")
    func diskLockMoves() throws {
        let image = FileManager.default.temporaryDirectory.appendingPathComponent("mig-\(UUID().uuidString.prefix(8)).img").path
        #expect(FileManager.default.createFile(atPath: image, contents: Data(count: 1 << 20)))
        defer { unlink(image) }
        let source = try APIVMM(try guest("counter") + ["--disk", "path=\(image)"])
        let destination = try APIVMM([])
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("mig-\(UUID().uuidString.prefix(8)).sock").path
        let received = receive(destination, "unix:\(path)")
        usleep(300_000)
        #expect(source.curl("PUT", "vm.send-migration", body: "{\"destination_url\":\"unix:\(path)\"}").status == 204)
        #expect(try #require(received()).status == 204, "\(destination.stderr.suffix(400))")
        #expect(eventually(10) { !source.child.isRunning })
        let third = run(VMM.binary, try guest("counter") + ["--disk", "path=\(image)"], timeout: 10)
        #expect(third.status != 0 && third.stderr.contains("locked by pid \(destination.child.processIdentifier)"), "\(third.stderr)")
        kill(destination.child.processIdentifier, SIGKILL)
    }

    @Test("Refusals: no VM to send, a VM already on the receiver, TLS, postcopy, bad URLs, local=on, a hotplug the guest has not taken")
    func refusals() throws {
        let empty = try APIVMM([])
        #expect(empty.curl("PUT", "vm.send-migration", body: "{\"destination_url\":\"unix:/tmp/x\"}").status == 404)
        for (body, words) in [("{\"destination_url\":\"tcp:1.2.3.4:5\",\"tls_dir\":\"/etc\"}", "not supported yet"),
                              ("{\"destination_url\":\"unix:/tmp/x\",\"memory_mode\":\"Postcopy\"}", "not supported yet"),
                              ("{\"destination_url\":\"tcp:example.org:5\"}", "not an IP address"),
                              ("{\"destination_url\":\"ftp://x\"}", "unix:/path/to/socket or tcp:HOST:PORT"),
                              ("{\"destination_url\":\"tcp:1.2.3.4:5\",\"local\":true}", "UNIX socket")] {
            let answer = empty.curl("PUT", "vm.send-migration", body: body)
            #expect(answer.status == 400 && answer.body.contains(words), "\(body): \(answer.status) \(answer.body)")
        }
        #expect(empty.curl("PUT", "vm.receive-migration", body: "{\"receiver_url\":\"tcp:0.0.0.0:1\",\"tls_dir\":\"/etc\"}").status == 400)
        let vm = try APIVMM(try guest("counter"))
        let busy = vm.curl("PUT", "vm.receive-migration", body: "{\"receiver_url\":\"unix:/tmp/never\"}")
        #expect(busy.status == 500 && busy.body.contains("already created"), "\(busy.body)")
        let local = vm.curl("PUT", "vm.send-migration", body: "{\"destination_url\":\"unix:/tmp/never\",\"local\":true}")
        #expect(local.status == 500 && local.body.contains("local=on"), "\(local.body)")
        // A hot-added disk the guest has not taken (this guest never scans): its arrival would be lost.
        let image = FileManager.default.temporaryDirectory.appendingPathComponent("mig-\(UUID().uuidString.prefix(8)).img").path
        #expect(FileManager.default.createFile(atPath: image, contents: Data(count: 1 << 20)))
        defer { unlink(image) }
        #expect(vm.curl("PUT", "vm.add-disk", body: "{\"path\":\"\(image)\"}").status == 200)
        let pending = vm.curl("PUT", "vm.send-migration", body: "{\"destination_url\":\"unix:/tmp/never\"}")
        #expect(pending.status == 500 && pending.body.contains("PCI hotplug waits"), "\(pending.body)")
        #expect(vm.curl("PUT", "vm.pause").status == 204)
        let snapshot = vm.curl("PUT", "vm.snapshot", body: "{\"destination_url\":\"file:///tmp\"}")
        #expect(snapshot.status == 500 && snapshot.body.contains("PCI hotplug waits"), "\(snapshot.body)")
        #expect(vm.curl("PUT", "vm.resume").status == 204)
        #expect(vm.state == "Running")
    }
}
