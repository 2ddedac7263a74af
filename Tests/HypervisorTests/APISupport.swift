import Foundation
@testable import Hypervisor
import Testing

/// A VMM serving the API on its own socket, for one test.
final class APIVMM: @unchecked Sendable {
    // @unchecked: every stored property is a let; Child reaps under its own rules.
    let socket: String
    let child: Child
    private let outPath: String
    private let errPath: String

    /// Starts `cloud-hypervisor --api-socket <socket> <arguments>` and waits
    /// until it answers `vmm.ping`.
    /// `socketPath`: serve there instead of a new directory's socket.
    /// `launcher`: a command that execs the VMM (e.g. `unshare -n --`), so
    /// the child's pid stays the VMM's.
    init(_ arguments: [String], socketPath: String? = nil, launcher: [String] = []) throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("api-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        socket = socketPath ?? dir.appendingPathComponent("api.sock").path
        outPath = dir.appendingPathComponent("out").path
        errPath = dir.appendingPathComponent("err").path
        let out = open(outPath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        let err = open(errPath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        let null = open("/dev/null", O_RDONLY | O_CLOEXEC)
        defer { [out, err, null].forEach { close($0) } }
        let command = launcher + [VMM.binary, "--api-socket", socket] + arguments
        child = try Child(command[0], Array(command.dropFirst()), stdin: null, stdout: out, stderr: err)
        guard eventually(10, { self.curl("GET", "vmm.ping").status == 200 || !self.child.isRunning }), child.isRunning else {
            throw Failure(description: "the VMM did not serve the API: \(stderr)")
        }
    }

    struct Failure: Error, CustomStringConvertible { let description: String }

    var stdout: String { (try? String(contentsOfFile: outPath, encoding: .utf8)) ?? "" }
    var stderr: String { (try? String(contentsOfFile: errPath, encoding: .utf8)) ?? "" }

    struct Answer {
        var status: Int
        var body: String
        var contentType: String
    }

    /// One request with Debian's curl, as a user would send it.
    func curl(_ method: String, _ endpoint: String, body: String? = nil) -> Answer {
        var arguments = ["-s", "--max-time", "10", "--unix-socket", socket, "-X", method,
                         "-w", "\n%{http_code} %{content_type}"]
        if let body { arguments += ["-H", "Content-Type: application/json", "--data-binary", body] }
        arguments.append("http://localhost/api/v1/\(endpoint)")
        let result = run("/usr/bin/curl", arguments, timeout: 15)
        guard let split = result.stdout.lastIndex(of: "\n") else { return Answer(status: 0, body: result.stderr, contentType: "") }
        let trailer = result.stdout[result.stdout.index(after: split)...].split(separator: " ", maxSplits: 1)
        return Answer(status: Int(trailer.first ?? "") ?? 0, body: String(result.stdout[..<split]),
                      contentType: trailer.count > 1 ? String(trailer[1]) : "")
    }

    /// `vm.info`'s state, or the status when there is none.
    var state: String {
        let answer = curl("GET", "vm.info")
        guard answer.status == 200, let data = answer.body.data(using: .utf8),
              let info = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else { return "HTTP \(answer.status)" }
        return info["state"] as? String ?? "?"
    }

    /// Bytes written as they are, then what the VMM answers until it closes
    /// the connection or `wait` seconds pass.
    func raw(_ request: [UInt8], wait: Double = 2) -> String {
        let fd = Self.connect(socket)
        guard fd >= 0 else { return "" }
        defer { close(fd) }
        var offset = 0
        while offset < request.count {
            let n = request[offset...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n <= 0 { break }
            offset += n
        }
        var answer: [UInt8] = []
        let deadline = Date().addingTimeInterval(wait)
        var chunk = [UInt8](repeating: 0, count: 65536)
        while Date() < deadline {
            var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&poller, 1, 50) >= 0 else { break }
            if poller.revents == 0 { continue }
            let n = read(fd, &chunk, chunk.count)
            if n <= 0 { break }
            answer += chunk[0..<n]
        }
        return String(decoding: answer, as: UTF8.self)
    }

    static func connect(_ path: String) -> Int32 {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: path.utf8) }
        let fd = Glibc.socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        let r = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        if r != 0 { close(fd); return -1 }
        return fd
    }

    /// `add` (answering `{"bdf","id"}`) then vm.remove-device of that id
    /// until the guest has ejected it, 20 times to let thread stacks and
    /// allocator caches settle, then 1,000 more: every one in `bdf`, the
    /// VMM's descriptors the same after as before and its resident memory
    /// grown by less than 4 MiB. Needs the hotplug guest.
    func flatOverCycles(bdf: String = "0000:00:02.0", _ add: (APIClient) throws -> APIClient.Answer) throws {
        #expect(eventually(10) { self.stdout.contains("hotplug guest ready") })
        let client = try APIClient(socketPath: socket)
        let pid = child.processIdentifier
        func cycle() throws -> Bool {
            let added = try add(client)
            guard added.status == 200, added.text.contains("\"bdf\":\"\(bdf)\""),
                  let id = added.text.split(separator: "\"").dropFirst(7).first else {
                Issue.record("add: \(added.status) \(added.text)")
                return false
            }
            let removed = try client.request("PUT", "vm.remove-device", body: Array("{\"id\":\"\(id)\"}".utf8))
            guard removed.status == 204 else {
                Issue.record("remove \(id): \(removed.status) \(removed.text)")
                return false
            }
            // Gone once the guest ejected it: its slot is free for the next.
            return eventually(10) { (try? client.request("GET", "vm.info"))?.text.contains("\"\(id)\"") == false }
        }
        for _ in 0..<20 { guard try cycle() else { return } }
        let before = (rss: RobustnessTests.resident(pid), fds: RobustnessTests.descriptors(pid))
        for _ in 0..<1000 { guard try cycle() else { return } }
        #expect(RobustnessTests.descriptors(pid) == before.fds, "descriptors: \(before.fds) → \(RobustnessTests.descriptors(pid))")
        let grown = RobustnessTests.resident(pid) - before.rss
        #expect(grown < 4 << 10, "resident memory grew by \(grown) KiB over 1,000 cycles")
    }

    /// Ends it with vmm.shutdown (SIGKILL if it will not) and returns its status.
    @discardableResult
    func shutdown() -> Int32 {
        if child.isRunning { _ = curl("PUT", "vmm.shutdown") }
        if !eventually(10, { !self.child.isRunning }) { kill(child.processIdentifier, SIGKILL) }
        return child.terminationStatus
    }

    deinit {
        if child.isRunning { kill(child.processIdentifier, SIGKILL) }
        child.waitUntilExit()
        try? FileManager.default.removeItem(atPath: (outPath as NSString).deletingLastPathComponent)
    }
}

/// Lines the ticker guest has printed.
func ticks(_ vmm: APIVMM) -> Int { vmm.stdout.components(separatedBy: "tick\n").count - 1 }
