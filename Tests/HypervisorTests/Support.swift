import Foundation
import Testing

/// Whether this machine can run guests at all; KVM tests are skipped, not passed, without it.
enum Host {
    static let hasKVM = access("/dev/kvm", R_OK | W_OK) == 0
    static let kvmSkipReason: Comment = "needs read-write /dev/kvm"
}

/// Builds the tiny assembly guests once per test run, with the same script
/// the demo and the benchmark use.
enum Guests {
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent()
    static let names = ["hello", "io", "triple", "reset", "spin", "smp", "echo", "panic", "msr", "hostile", "hostile_net", "ticker", "counter", "button", "hotplug", "cpuhotplug", "memhotplug", "churn", "dirtier", "vsock", "vsock_reset", "virtiofs", "vhostblk", "blkzero", "mrgrx", "viommu", "txirq"]

    /// name → path of the built ELF; a build failure fails the test that asked.
    static let built: Result<[String: String], BuildError> = {
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("vmm-guests-\(getpid())")
        try? FileManager.default.createDirectory(at: out, withIntermediateDirectories: true)
        var paths: [String: String] = [:]
        for name in names {
            let target = out.appendingPathComponent(name).path
            let result = run(repository.appendingPathComponent("scripts/build-guest.sh").path, [name, target])
            guard result.status == 0 else { return .failure(BuildError(message: "build \(name).S: \(result.stderr)")) }
            paths[name] = target
        }
        return .success(paths)
    }()

    struct BuildError: Error, CustomStringConvertible { let message: String; var description: String { message } }

    static func path(_ name: String) throws -> String {
        try #require(try built.get()[name])
    }
}

/// The cloud-hypervisor binary next to this test bundle.
enum VMM {
    static var binary: String {
        let exe = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        var dir = exe.deletingLastPathComponent()
        // swift test runs .build/<config>/<Package>PackageTests.xctest
        if dir.pathExtension == "xctest" { dir = dir.deletingLastPathComponent() }
        return dir.appendingPathComponent("cloud-hypervisor").path
    }
}

struct RunResult {
    var status: Int32
    var stdout: String
    var stderr: String
    var timedOut: Bool
}

/// A child process the test started and alone reaps. Foundation's `Process`
/// cannot run the VMM: it learns of a child's exit from a socket the child
/// inherits, and the VMM closes every inherited descriptor first thing, so
/// Foundation's one monitor thread blocks in waitpid on a live VMM and stops
/// reaping every other child.
final class Child: @unchecked Sendable {
    let processIdentifier: pid_t
    private var status: Int32?

    /// Starts `executable` with the three standard streams on the given descriptors.
    init(_ executable: String, _ arguments: [String],
         stdin: Int32, stdout: Int32, stderr: Int32) throws {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        for (fd, target) in [(stdin, 0), (stdout, 1), (stderr, 2)] {
            posix_spawn_file_actions_adddup2(&actions, fd, Int32(target))
        }
        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        // In-process tests build the VMM's event loop, which blocks the stop
        // signals on the calling thread and ignores SIGPIPE; a child spawned
        // from that thread would inherit both (a lab script could then not
        // stop its own helpers with kill): each child starts with none.
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var noSignals = sigset_t(), defaults = sigset_t()
        sigemptyset(&noSignals)
        sigemptyset(&defaults)
        for signal in [SIGTERM, SIGINT, SIGHUP, SIGPIPE] { sigaddset(&defaults, signal) }
        posix_spawnattr_setsigmask(&attributes, &noSignals)
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, executable, &actions, &attributes, argv, environ)
        guard rc == 0 else { throw POSIXError(POSIXErrorCode(rawValue: rc) ?? .EINVAL) }
        processIdentifier = pid
    }

    var isRunning: Bool {
        if status != nil { return false }
        var raw: Int32 = 0
        if waitpid(processIdentifier, &raw, WNOHANG) == processIdentifier { status = raw }
        return status == nil
    }

    /// The exit code, or 128 + the signal that ended it.
    var terminationStatus: Int32 {
        waitUntilExit()
        let raw = status ?? 0
        return raw & 0x7f == 0 ? (raw >> 8) & 0xff : 128 + (raw & 0x7f)
    }

    func terminate() { if isRunning { kill(processIdentifier, SIGTERM) } }

    func waitUntilExit() {
        guard status == nil else { return }
        var raw: Int32 = 0
        while waitpid(processIdentifier, &raw, 0) < 0 && errno == EINTR {}
        status = raw
    }
}

/// Runs a command to its end or `timeout`, capturing both outputs through files.
@discardableResult
func run(_ executable: String, _ arguments: [String], timeout: Double = 30,
         input: String? = nil, whileRunning: ((Child, () -> String) -> Void)? = nil) -> RunResult {
    let tmp = FileManager.default.temporaryDirectory
    let outURL = tmp.appendingPathComponent("run-\(UUID().uuidString).out")
    let errURL = tmp.appendingPathComponent("run-\(UUID().uuidString).err")
    let out = open(outURL.path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
    let err = open(errURL.path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
    var pipeFDs: [Int32] = [-1, -1]
    var stdin = input == nil ? open("/dev/null", O_RDONLY | O_CLOEXEC) : (pipe(&pipeFDs) == 0 ? pipeFDs[0] : -1)
    // The child gets only its three streams; the write end must not leak into it.
    if pipeFDs[1] >= 0 { _ = fcntl(pipeFDs[1], F_SETFD, FD_CLOEXEC); _ = fcntl(pipeFDs[0], F_SETFD, FD_CLOEXEC) }
    defer {
        [out, err, stdin, pipeFDs[1]].filter { $0 >= 0 }.forEach { close($0) }
        try? FileManager.default.removeItem(at: outURL)
        try? FileManager.default.removeItem(at: errURL)
    }
    let read = { (url: URL) in (try? String(contentsOf: url, encoding: .utf8)) ?? "" }
    let child: Child
    do {
        child = try Child(executable, arguments, stdin: stdin, stdout: out, stderr: err)
    } catch {
        return RunResult(status: -1, stdout: "", stderr: "\(error)", timedOut: false)
    }
    if let input {
        close(stdin)
        stdin = -1
        let bytes = Array(input.utf8)
        _ = bytes.withUnsafeBytes { write(pipeFDs[1], $0.baseAddress, $0.count) }
        close(pipeFDs[1])
        pipeFDs = [-1, -1]
    }
    whileRunning?(child, { read(outURL) })
    let deadline = Date().addingTimeInterval(timeout)
    var timedOut = false
    while child.isRunning {
        if Date() > deadline {
            timedOut = true
            child.terminate()
            usleep(200_000)
            if child.isRunning { kill(child.processIdentifier, SIGKILL) }
        }
        usleep(2000)
    }
    return RunResult(status: child.terminationStatus, stdout: read(outURL), stderr: read(errURL), timedOut: timedOut)
}

/// Runs cloud-hypervisor with `arguments`.
@discardableResult
func runVMM(_ arguments: [String], timeout: Double = 30, input: String? = nil,
            whileRunning: ((Child, () -> String) -> Void)? = nil) -> RunResult {
    run(VMM.binary, arguments, timeout: timeout, input: input, whileRunning: whileRunning)
}

/// The scheduling policy of each thread of process `pid`, by thread name
/// (SCHED_OTHER 0, SCHED_BATCH 3, SCHED_IDLE 5): field 41 of its stat.
func threadPolicies(of pid: pid_t) -> [String: Int] {
    var policies: [String: Int] = [:]
    for task in (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task")) ?? [] {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/task/\(task)/stat", encoding: .utf8),
              let open = stat.firstIndex(of: "("), let close = stat.lastIndex(of: ")") else { continue }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        policies[String(stat[stat.index(after: open)..<close])] = fields.count > 38 ? Int(fields[38]) : nil
    }
    return policies
}

/// Polls `condition` for up to `seconds`.
func eventually(_ seconds: Double, _ condition: () -> Bool) -> Bool {
    let deadline = Date().addingTimeInterval(seconds)
    while Date() < deadline {
        if condition() { return true }
        usleep(5000)
    }
    return condition()
}
