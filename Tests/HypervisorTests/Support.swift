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
    static let names = ["hello", "io", "triple", "reset", "spin", "smp", "echo", "panic", "msr", "hostile"]

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

/// Runs a command to its end or `timeout`, capturing both outputs through files.
@discardableResult
func run(_ executable: String, _ arguments: [String], directory: String? = nil, timeout: Double = 30,
         input: String? = nil, whileRunning: ((Process, () -> String) -> Void)? = nil) -> RunResult {
    let tmp = FileManager.default.temporaryDirectory
    let outURL = tmp.appendingPathComponent("run-\(UUID().uuidString).out")
    let errURL = tmp.appendingPathComponent("run-\(UUID().uuidString).err")
    _ = FileManager.default.createFile(atPath: outURL.path, contents: nil)
    _ = FileManager.default.createFile(atPath: errURL.path, contents: nil)
    defer {
        try? FileManager.default.removeItem(at: outURL)
        try? FileManager.default.removeItem(at: errURL)
    }
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    if let directory { process.currentDirectoryURL = URL(fileURLWithPath: directory) }
    let stdin = Pipe()
    process.standardInput = input == nil ? FileHandle.nullDevice : stdin
    process.standardOutput = try? FileHandle(forWritingTo: outURL)
    process.standardError = try? FileHandle(forWritingTo: errURL)
    let read = { (url: URL) in (try? String(contentsOf: url, encoding: .utf8)) ?? "" }
    do { try process.run() } catch { return RunResult(status: -1, stdout: "", stderr: "\(error)", timedOut: false) }
    if let input {
        stdin.fileHandleForWriting.write(Data(input.utf8))
        try? stdin.fileHandleForWriting.close()
    }
    whileRunning?(process, { read(outURL) })
    let deadline = Date().addingTimeInterval(timeout)
    var timedOut = false
    while process.isRunning {
        if Date() > deadline {
            timedOut = true
            process.terminate()
            usleep(200_000)
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        }
        usleep(2000)
    }
    process.waitUntilExit()
    return RunResult(status: process.terminationStatus, stdout: read(outURL), stderr: read(errURL), timedOut: timedOut)
}

/// Runs cloud-hypervisor with `arguments`.
@discardableResult
func runVMM(_ arguments: [String], timeout: Double = 30, input: String? = nil,
            whileRunning: ((Process, () -> String) -> Void)? = nil) -> RunResult {
    run(VMM.binary, arguments, timeout: timeout, input: input, whileRunning: whileRunning)
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
