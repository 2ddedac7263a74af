import Foundation
import Testing

@testable import Hypervisor

@Suite("The tests' own process helpers")
struct SupportTests {
    /// The lab's script stops its watcher with kill: a child started from a
    /// thread where the VMM's event loop blocked TERM once could not be
    /// stopped, and a finished lab run waited ten minutes for it.
    @Test("a child starts with no stop signal blocked or ignored, whatever the spawning thread did")
    func childSignals() throws {
        _ = try EventLoop()  // blocks TERM, INT, HUP on this thread and ignores SIGPIPE
        let result = run("/bin/sh", ["-c", "grep -E '^Sig(Blk|Ign):' /proc/self/status"])
        #expect(result.status == 0, "\(result.stderr)")
        let masks = result.stdout.split(separator: "\n").compactMap { line -> UInt64? in
            UInt64(line.split(separator: "\t").last.map(String.init) ?? "", radix: 16)
        }
        try #require(masks.count == 2, "\(result.stdout)")
        for signal in [SIGTERM, SIGINT, SIGHUP, SIGPIPE] {
            #expect(masks.allSatisfy { $0 & (1 << UInt64(signal - 1)) == 0 }, "signal \(signal): \(result.stdout)")
        }
    }
}
