import Foundation
import Testing

/// virtio and PCI on the host's /dev/kvm with tiny guests: what needs no Linux.
@Suite("virtio devices with tiny guests", .enabled(if: Host.hasKVM, Host.kvmSkipReason))
struct VirtioHostTests {
    func scratchDisk(_ name: String, bytes: Int = 1 << 20) -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("\(name)-\(getpid()).raw").path
        FileManager.default.createFile(atPath: path, contents: Data(count: bytes))
        return path
    }

    @Test("a hostile guest: garbage config, BARs over RAM and over another device, MSI-X garbage, a descriptor loop; the VMM lives and the device works after a reset")
    func hostileGuest() throws {
        let r = runVMM(["--kernel", try Guests.path("hostile"), "--serial", "tty", "--console", "null", "--memory", "size=64M"])
        #expect(r.status == 0, "\(r.stderr)")
        for line in ["vendor after garbage 0x10441af4", "bar0 sized 0xffff8004", "still running over RAM",
                     "other device status 0x00000000", "device needs reset", "status after reset 0x0000000f", "rng ok 64 bytes"] {
            #expect(r.stdout.contains(line + "\n"), "missing '\(line)': \(r.stdout)")
        }
        #expect(r.stderr.contains("warning: PCI 1af4:1044 BAR0 at 0xc0000000+0x8000 overlaps another device; left unmapped"), "\(r.stderr)")
        #expect(r.stderr.contains("warning: virtio-rng: the guest's queue 0 has a descriptor loop or a chain too long"), "\(r.stderr)")
        #expect(r.stderr.split(separator: "\n").count == 2, "one line each: \(r.stderr)")
    }

    @Test("a disk open in one VMM is refused to a second, naming the holder; readonly=on disks share")
    func lock() throws {
        let disk = scratchDisk("locked")
        defer { try? FileManager.default.removeItem(atPath: disk) }
        var second = RunResult(status: -1, stdout: "", stderr: "", timedOut: false)
        var shared = second
        var holder: Int32 = 0
        let first = runVMM(["--kernel", try Guests.path("spin"), "--serial", "tty", "--console", "off",
                            "--disk", "path=\(disk)"]) { process, output in
            _ = eventually(10) { output().contains("spinning") }
            holder = process.processIdentifier
            second = runVMM(["--kernel", (try? Guests.path("hello")) ?? "", "--disk", "path=\(disk)"])
            shared = runVMM(["--kernel", (try? Guests.path("hello")) ?? "", "--disk", "path=\(disk),readonly=on"])
            process.terminate()
        }
        #expect(first.status == 0, "\(first.stderr)")
        #expect(second.status == 1)
        #expect(second.stderr == "cloud-hypervisor: error: --disk path: invalid value '\(disk)': is locked by pid \(holder) (cloud-hyperviso): an image is used by one VM at a time (readonly=on disks can share one)\n")
        #expect(shared.status == 1, "a reader waits for the writer too")

        // Two read-only users at once are fine.
        var both = RunResult(status: -1, stdout: "", stderr: "", timedOut: false)
        let reader = runVMM(["--kernel", try Guests.path("spin"), "--serial", "tty", "--console", "off",
                             "--disk", "path=\(disk),readonly=on"]) { process, output in
            _ = eventually(10) { output().contains("spinning") }
            both = runVMM(["--kernel", (try? Guests.path("hello")) ?? "", "--disk", "path=\(disk),readonly=on"])
            process.terminate()
        }
        #expect(reader.status == 0 && both.status == 0, "\(both.stderr)")
    }

    @Test("bad disk paths: missing, a directory, a qcow2 image, not writable; each one line and exit 1")
    func badDisks() throws {
        let qcow = scratchDisk("qcow")
        defer { try? FileManager.default.removeItem(atPath: qcow) }
        try Data([0x51, 0x46, 0x49, 0xfb, 0, 0, 0, 3]).write(to: URL(fileURLWithPath: qcow))
        let hello = try Guests.path("hello")
        let cases: [([String], String)] = [
            (["--disk", "path=/nonexistent/disk.raw"], "no such file (create one, e.g. truncate -s 1G /nonexistent/disk.raw)"),
            (["--disk", "path=/tmp"], "is a directory, not a disk image"),
            (["--disk", "path=\(qcow)"], "a qcow2 image (only raw images for now; convert it with qemu-img convert -O raw) is not supported yet"),
            (["--rng", "src=/nonexistent/rng"], "--rng src: invalid value '/nonexistent/rng': No such file or directory"),
        ]
        for (arguments, message) in cases {
            let r = runVMM(["--kernel", hello] + arguments)
            #expect(r.status == 1)
            #expect(r.stderr.contains(message) && r.stderr.filter { $0 == "\n" }.count == 1, "\(r.stderr)")
        }
    }

    @Test("--serial tty with the default --console tty: allowed, with Cloud Hypervisor's warning")
    func doubleTTY() throws {
        let r = runVMM(["--kernel", try Guests.path("hello"), "--serial", "tty"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.hasPrefix("Hello from a tiny PVH guest"))
        #expect(r.stderr.contains("warning: --serial tty and --console tty both write to the terminal"), "\(r.stderr)")
    }

    @Test("Cloud Hypervisor's spellings: bare --rng, several disks after one --disk, --console file=")
    func spellings() throws {
        let a = scratchDisk("a"), b = scratchDisk("b")
        let console = FileManager.default.temporaryDirectory.appendingPathComponent("console-\(getpid()).log").path
        defer { for path in [a, b, console] { try? FileManager.default.removeItem(atPath: path) } }
        let r = runVMM(["--kernel", try Guests.path("hello"), "--rng", "--serial", "tty", "--disk", "path=\(a)", "path=\(b)",
                        "--console", "file=\(console)", "-v"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stderr.contains("virtio-blk0: \(a), 1M") && r.stderr.contains("virtio-blk1: \(b), 1M"), "\(r.stderr)")
        #expect(FileManager.default.fileExists(atPath: console))
    }

    @Test("write-zeroes and discard read back as zeroes and leave the image so, where the file system zeroes ranges (the temporary directory) and where it cannot (tmpfs: a hole punched and allocated again)")
    func writeZeroes() throws {
        for directory in [FileManager.default.temporaryDirectory.path, "/dev/shm"] {
            let path = "\(directory)/blkzero-\(getpid()).raw"
            FileManager.default.createFile(atPath: path, contents: Data(repeating: 0xcd, count: 1 << 20))
            defer { try? FileManager.default.removeItem(atPath: path) }
            let r = runVMM(["--kernel", try Guests.path("blkzero"), "--serial", "tty", "--console", "off", "--memory", "size=64M",
                            "--disk", "path=\(path)"])
            #expect(r.status == 0, "\(directory): \(r.stderr)")
            for line in ["write-zeroes: write 0x00000000 status 0x00000000 read 0x00000000 zeroes",
                         "write-zeroes unmap: write 0x00000000 status 0x00000000 read 0x00000000 zeroes",
                         "discard: write 0x00000000 status 0x00000000 read 0x00000000 zeroes",
                         "unknown flag: status 0x00000002", "blkzero done"] {
                #expect(r.stdout.contains(line + "\n"), "\(directory): missing '\(line)': \(r.stdout)")
            }
            // Sectors 8-31 zeroed or discarded; the rest as the test wrote it.
            let image = try Data(contentsOf: URL(fileURLWithPath: path))
            #expect(image.count == 1 << 20 && image[..<4096].allSatisfy { $0 == 0xcd } && image[4096..<16384].allSatisfy { $0 == 0 }
                    && image[16384...].allSatisfy { $0 == 0xcd }, "\(directory): the image around sectors 8-31")
            if directory == "/dev/shm" {
                // Zeroes without "may unmap" stay allocated; the unmapped and
                // the discarded ranges (4 KiB each) are given back.
                var info = stat()
                #expect(stat(path, &info) == 0 && info.st_blocks == (1 << 20) / 512 - 2 * 8, "blocks: \(info.st_blocks)")
            }
        }
    }
}
