import Foundation
import Testing
@testable import cloud_hypervisor
@testable import Hypervisor

/// argv to options, as clap reads Cloud Hypervisor's: the reader alone,
/// without launching anything (the binary's own refusals are in EndToEndTests).
@Suite("Command line reader")
struct CommandLineTests {
    func parse(_ arguments: [String]) -> Result<CloudHypervisor, CloudHypervisor.ParseOutcome> {
        CloudHypervisor.parseCommandLine(arguments)
    }

    func refusal(_ arguments: [String]) -> String? {
        if case .failure(.refused(let message)) = parse(arguments) { return message }
        return nil
    }

    @Test("lists take every word up to the next option, from each time they are given; --x=v as --x v")
    func lists() throws {
        let command = try parse(["--disk", "path=/a", "path=/b", "--kernel=/k", "--disk=path=/c", "path=/d", "--cmdline", "-"]).get()
        #expect(command.disk.map(\.path) == ["/a", "/b", "/c", "/d"])
        #expect(command.kernel == "/k")
        #expect(command.cmdline == "-", "a lone dash is a value")
    }

    @Test("-v counts, clustered or not; flags take no value; bare --rng is the default source")
    func flags() throws {
        let command = try parse(["-vv", "-v", "--landlock", "--rng", "--pvpanic"]).get()
        #expect(command.verbose == 3)
        #expect(command.landlock && command.pvpanic)
        #expect(command.rng.source == RngConfig.defaultSource)
        #expect(try parse(["--rng", "src=/dev/random"]).get().rng.source == "/dev/random")
        #expect(try parse([]).get().verbose == 0)
    }

    @Test("--help and --version come back as text, wherever they are")
    func helpAndVersion() {
        for arguments in [["--help"], ["-h"], ["--kernel", "/k", "--help"], ["--cmdline", "x", "-h"]] {
            guard case .failure(.exit(let text)) = parse(arguments) else { Issue.record("\(arguments)"); continue }
            #expect(text.contains("--kernel <path>") && text.contains("--disk <disk>..."))
        }
        for arguments in [["--version"], ["-V"]] {
            guard case .failure(.exit(let text)) = parse(arguments) else { Issue.record("\(arguments)"); continue }
            #expect(text == "cloud-hypervisor v\(Version.string)\n")
        }
    }

    @Test("each misuse is one line naming the option", arguments: [
        (["--bogus"], "Unknown option '--bogus' (cloud-hypervisor --help lists the options)"),
        (["-x"], "Unknown option '-x' (cloud-hypervisor --help lists the options)"),
        (["vmlinux"], "Unexpected argument 'vmlinux': a value goes after its option (--disk path=…)"),
        (["--kernel"], "--kernel: a value is required"),
        (["--kernel", "--cmdline", "x"], "--kernel: a value is required"),
        (["--disk", "--kernel", "/k"], "--disk: a value is required"),
        (["--landlock=on"], "--landlock: invalid value 'on': --landlock takes no value"),
        (["--kernel", "/a", "--kernel=/b"], "--kernel is given more than once; give it once"),
        (["--landlock", "--landlock"], "--landlock is given more than once; give it once"),
        (["--seccomp", "maybe"], "--seccomp: invalid value 'maybe': expected true, false, log or errno"),
        (["--cpus", "boot=0"], "--cpus boot: invalid value '0'"),
        (["--watchdog"], "--watchdog is not supported yet"),
    ])
    func misuse(arguments: [String], message: String) {
        let refused = refusal(arguments)
        #expect(refused?.hasPrefix(message) == true, "\(refused ?? "accepted")")
    }
}

/// What the VMM binary links: each of these cost every VM memory it never
/// used (bench/memory.py: 2.42 -> 1.88 MiB per VM without them).
@Suite("The VMM's binary")
struct BinaryLinkTests {
    @Test("no FoundationEssentials (JSON, the CLI), no _StringProcessing (String.contains of a String, firstRange), no MainActor (an @main type)")
    func noHeavyModules() {
        let symbols = run("/usr/bin/nm", ["--undefined-only", "--dynamic", VMM.binary])
        #expect(symbols.status == 0, "\(symbols.stderr)")
        #expect(symbols.stdout.contains("swift_"), "nm read the binary's undefined symbols")
        for (module, prefix) in [("FoundationEssentials", "$s20FoundationEssentials"), ("_StringProcessing", "$s17_StringProcessing"),
                                 ("MainActor", "$sScM")] {
            let uses = symbols.stdout.split(separator: "\n").filter { $0.contains(prefix) }
            #expect(uses.isEmpty, "\(module): \(uses.prefix(3))")
        }
    }

    static let release = Guests.repository.appendingPathComponent(".build/release/cloud-hypervisor").path

    @Test("the release binary as the README builds it loads no shared library but glibc's: no C++, Swift, libseccomp, libcap-ng, liburing or libgcc_s; each would be mapped, relocated and partly resident in every VM",
          .enabled(if: access(release, X_OK) == 0, "needs the release build: run scripts/test.sh"))
    func sharedLibraries() {
        let dynamic = run("/usr/bin/readelf", ["-d", Self.release])
        #expect(dynamic.status == 0, "\(dynamic.stderr)")
        let needed = dynamic.stdout.split(separator: "\n").filter { $0.contains("(NEEDED)") }
        #expect(needed.contains { $0.contains("libc.so.6") }, "readelf listed the libraries: \(needed)")
        let glibc = ["libc.so.6", "libm.so.6", "ld-linux-x86-64.so.2"]
        #expect(needed.allSatisfy { line in glibc.contains { line.contains("[\($0)]") } }, "\(needed)")
    }

    @Test("the release binary links neither the Swift Concurrency runtime nor libdispatch: their relocated tables and start-up cost every VM 120 KiB (swift-log's task-local logger brought them)",
          .enabled(if: access(release, X_OK) == 0, "needs the release build: run scripts/test.sh"))
    func noConcurrencyRuntime() {
        let functions = Self.releaseFunctions()
        #expect(functions["swift_retain"] != nil, "nm read the binary's functions")
        for name in ["_libdispatch_init", "swift_task_create", "swift_task_localValueGet"] {
            #expect(functions[name] == nil, "\(name) is linked")
        }
    }

    @Test("the functions a VM runs (link/hot-symbols.txt) are laid out before every other function of this project's Swift modules, and the list still names the binary's functions",
          .enabled(if: access(release, X_OK) == 0, "needs the release build: run scripts/test.sh"))
    func hotFunctionsFirst() throws {
        let listPath = Guests.repository.appendingPathComponent("link/hot-symbols.txt").path
        let hot = Set(try String(contentsOfFile: listPath, encoding: .utf8).split(separator: "\n")
            .filter { !$0.hasPrefix("#") }.map(String.init))
        let address = Self.releaseFunctions()
        // A toolchain or a change that renames much makes the list stale:
        // link/order-symbols.py writes it again.
        let named = hot.filter { address[$0] != nil }.count
        #expect(named * 10 >= hot.count * 9, "\(hot.count - named) of \(hot.count) listed functions are not in the binary: run link/order-symbols.py")
        let own = address.filter { $0.key.hasPrefix("$s10Hypervisor") || $0.key.hasPrefix("$s16cloud_hypervisor") }
        let lastHot = own.filter { hot.contains($0.key) }.max { $0.value < $1.value }
        let firstCold = own.filter { !hot.contains($0.key) }.min { $0.value < $1.value }
        #expect(lastHot != nil && firstCold != nil, "nm listed the project's functions")
        if let lastHot, let firstCold {
            #expect(lastHot.value < firstCold.value, "\(lastHot.key) at \(String(lastHot.value, radix: 16)) comes after \(firstCold.key) at \(String(firstCold.value, radix: 16))")
        }
    }

    /// The release binary's functions by name, at their link-time addresses (nm).
    static func releaseFunctions() -> [String: UInt64] {
        let symbols = run("/usr/bin/nm", ["--defined-only", release])
        #expect(symbols.status == 0, "\(symbols.stderr)")
        var address: [String: UInt64] = [:]
        for line in symbols.stdout.split(separator: "\n") {
            let fields = line.split(separator: " ", maxSplits: 2)
            guard fields.count == 3, "tTwW".contains(fields[1]), let value = UInt64(fields[0], radix: 16) else { continue }
            address[String(fields[2])] = value
        }
        return address
    }
}
