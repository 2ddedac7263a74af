import CVMMCore
import CVMMTestHooks
import Foundation
import Testing
@testable import Hypervisor

enum LandlockSupport {
    static let available = vmm_landlock_abi() >= 1
    static let skipReason: Comment = "this kernel has no Landlock enabled (dmesg | grep landlock)"
}

@Suite("Landlock")
struct LandlockTests {
    @Test("a confined thread opens what its rules grant and gets EACCES for the rest",
          .enabled(if: LandlockSupport.available, LandlockSupport.skipReason))
    func enforced() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("landlock-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let inside = dir.appendingPathComponent("granted").path
        FileManager.default.createFile(atPath: inside, contents: Data("ok".utf8))
        var results: [Int32] = [0, 0]
        #expect(vmm_test_landlock(dir.path, inside, "/etc/hostname", &results) == 0)
        #expect(results[0] == 0, "a file beneath the granted directory opens: \(results[0])")
        #expect(results[1] == -EACCES, "a file outside the rules: \(results[1])")
    }

    @Test("--landlock: the confined VMM boots and uses every file it was given; --landlock-rules grants more",
          .enabled(if: LandlockSupport.available && Host.hasKVM, LandlockSupport.skipReason))
    func confinedLaunch() throws {
        let disk = FileManager.default.temporaryDirectory.appendingPathComponent("landlock-disk-\(getpid()).raw").path
        let serial = FileManager.default.temporaryDirectory.appendingPathComponent("landlock-serial-\(getpid()).log").path
        FileManager.default.createFile(atPath: disk, contents: Data(count: 1 << 20))
        defer { for path in [disk, serial] { try? FileManager.default.removeItem(atPath: path) } }
        let r = runVMM(["--kernel", try Guests.path("hello"), "--serial", "file=\(serial)", "--console", "off",
                        "--disk", "path=\(disk)", "--landlock", "--landlock-rules", "path=/tmp,access=rw", "path=/etc/hostname,access=r"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(try String(contentsOfFile: serial, encoding: .utf8).hasPrefix("Hello from a tiny PVH guest"))
        // The rules' own paths must exist: a typo is an error, not a hole.
        let missing = runVMM(["--kernel", try Guests.path("hello"), "--landlock", "--landlock-rules", "path=/no/such/dir,access=r"])
        #expect(missing.status == 1 && missing.stderr.contains("--landlock: allow /no/such/dir: No such file or directory"), "\(missing.stderr)")
    }

    @Test("the rules a configuration implies", arguments: [true, false])
    func implied(readonly: Bool) throws {
        var config = VMConfig(kernelPath: "/k", initramfsPath: "/i")
        config.disks = [DiskConfig(path: "/d.raw", readonly: readonly, id: nil)]
        config.serial = .file(path: "/s.log")
        config.devices = [try DeviceConfig(parsing: "path=0000:01:00.0")]
        let rules = Landlock.rules(for: config)
        #expect(rules.contains(LandlockRule(path: "/d.raw", read: true, write: !readonly)))
        for (path, write) in [("/k", false), ("/i", false), ("/s.log", true), ("/dev/kvm", true), ("/dev/urandom", false),
                              ("/dev/vfio", true), ("/sys/bus/pci/devices/0000:01:00.0", true)] {
            #expect(rules.contains(LandlockRule(path: path, read: true, write: write)), "\(path)")
        }
    }

    @Test("--landlock-rules syntax: access r, w or rw; it needs --landlock")
    func parsing() throws {
        #expect(try LandlockRule(parsing: "path=/a,access=rw") == LandlockRule(path: "/a", read: true, write: true))
        #expect(try LandlockRule(parsing: "path=/a,access=w") == LandlockRule(path: "/a", read: false, write: true))
        #expect(throws: ConfigError.self) { try LandlockRule(parsing: "path=/a,access=x") }
        #expect(throws: ConfigError.self) { try LandlockRule(parsing: "access=r") }
        let r = runVMM(["--kernel", "/k", "--landlock-rules", "path=/tmp,access=r"])
        #expect(r.status == 1 && r.stderr.contains("--landlock-rules: give --landlock too"), "\(r.stderr)")
    }
}
