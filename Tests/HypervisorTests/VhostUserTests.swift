import Foundation
import Testing

/// A real vhost-user backend: Debian's virtiofsd (qemu-system-common).
enum Virtiofsd {
    static let path = "/usr/lib/qemu/virtiofsd"
    static let available = FileManager.default.isExecutableFile(atPath: path) && getuid() == 0

    /// virtiofsd serving `share` on `socket`, once its socket is there.
    static func start(share: String, socket: String) throws -> Child {
        let null = open("/dev/null", O_RDWR)
        defer { close(null) }
        let child = try Child(path, ["--socket-path=\(socket)", "-o", "source=\(share)", "-o", "cache=none",
                                     "-o", "sandbox=chroot", "-o", "log_level=err"], stdin: null, stdout: null, stderr: null)
        #expect(eventually(10) { FileManager.default.fileExists(atPath: socket) }, "virtiofsd did not make its socket")
        return child
    }
}

/// virtio-fs over vhost-user with a tiny guest speaking FUSE to virtiofsd
/// (Guests/virtiofs.c): this VMM hands the queues over and stays out of
/// the data path.
@Suite("vhost-user and virtio-fs", .enabled(if: Host.hasKVM && Virtiofsd.available, "needs /dev/kvm, root and virtiofsd"),
       .serialized)
struct VhostUserTests {
    func shareDirectory() throws -> (dir: String, share: String, socket: String) {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("virtiofs-\(getpid())-\(UUID().uuidString.prefix(8))").path
        let share = dir + "/share"
        try FileManager.default.createDirectory(atPath: share, withIntermediateDirectories: true)
        try "hello through virtio-fs\n".write(toFile: share + "/hello.txt", atomically: true, encoding: .utf8)
        return (dir, share, dir + "/fs.sock")
    }

    @Test("a file read through virtiofsd under seccomp: the tag and queues in config space, FUSE INIT, LOOKUP, OPEN, READ; a reset takes the rings back and the backend serves the new ones; all of it again after a reboot")
    func readThroughBackend() throws {
        let (dir, share, socket) = try shareDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let backend = try Virtiofsd.start(share: share, socket: socket)
        defer { backend.terminate(); backend.waitUntilExit() }
        let r = runVMM(["--kernel", try Guests.path("virtiofs"), "--serial", "tty", "--console", "off",
                        "--memory", "size=64M,shared=on", "--fs", "tag=myfs,socket=\(socket)", "-v"]) { process, output in
            _ = eventually(20) { output().components(separatedBy: "virtiofs done\n").count > 2 }
            process.terminate()
        }
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.components(separatedBy: "read error 0x00000000 [hello through virtio-fs\n]").count == 3, "\(r.stdout)")
        for line in ["tag [myfs] request queues 0x00000001", "init error 0x00000000 major 0x00000007",
                     "lookup error 0x00000000 size 0x00000018", "read error 0x00000000 [hello through virtio-fs\n]",
                     "reset done", "after reset lookup error 0x00000000", "virtiofs done"] {
            #expect(r.stdout.contains(line + "\n"), "missing '\(line)': \(r.stdout)")
        }
        #expect(r.stderr.contains("virtio-fs0: tag myfs, backend \(socket), 1 request queue(s), at 0000:00:01.0"), "\(r.stderr)")
        #expect(!r.stderr.contains("warning"), "\(r.stderr)")
    }

    @Test("refusals: no shared memory, no backend on the socket, a backend that never answers; each one line and exit 1")
    func refusals() throws {
        let (dir, _, socket) = try shareDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let kernel = try Guests.path("hello")
        let private_ = runVMM(["--kernel", kernel, "--fs", "tag=myfs,socket=\(socket)"])
        #expect(private_.status == 1)
        #expect(private_.stderr == "cloud-hypervisor: error: --fs tag=myfs: a vhost-user backend maps guest RAM: give --memory shared=on\n", "\(private_.stderr)")
        let absent = runVMM(["--kernel", kernel, "--memory", "size=64M,shared=on", "--fs", "tag=myfs,socket=\(socket)"])
        #expect(absent.status == 1)
        #expect(absent.stderr.hasPrefix("cloud-hypervisor: error: --fs socket=\(socket): cannot connect (No such file or directory): start virtiofsd"), "\(absent.stderr)")
        // A socket whose owner accepts and says nothing.
        let silent = UnixSocket.listen(socket)
        defer { close(silent) }
        let start = Date()
        let mute = runVMM(["--kernel", kernel, "--memory", "size=64M,shared=on", "--fs", "tag=myfs,socket=\(socket)"])
        #expect(mute.status == 1)
        #expect(mute.stderr == "cloud-hypervisor: error: --fs socket=\(socket): the backend did not answer the vhost-user handshake within 5 s\n", "\(mute.stderr)")
        #expect(Date().timeIntervalSince(start) < 15)
    }
}

extension VhostUserTests {
    @Test("vm.add-fs into a running VM under seccomp, then its backend killed: the VMM logs it and runs on; the share is removed like any device",
          .enabled(if: APITests.curlAvailable))
    func hotplugAndBackendDeath() throws {
        let (dir, share, socket) = try shareDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let backend = try Virtiofsd.start(share: share, socket: socket)
        defer { backend.terminate(); backend.waitUntilExit() }
        let vmm = try APIVMM(["--kernel", try Guests.path("hotplug"), "--serial", "tty", "--console", "off",
                              "--memory", "size=64M,shared=on"])
        #expect(eventually(10) { vmm.stdout.contains("hotplug guest ready") })
        let added = vmm.curl("PUT", "vm.add-fs", body: "{\"tag\":\"kataShared\",\"socket\":\"\(socket)\",\"num_queues\":1,\"queue_size\":1024}")
        #expect(added.status == 200 && added.body == "{\"bdf\":\"0000:00:02.0\",\"id\":\"_fs0\"}", "\(added.body)")
        #expect(eventually(10) { vmm.stdout.contains("slot arrived") }, "\(vmm.stdout)")
        let info = vmm.curl("GET", "vm.info").body
        #expect(info.contains("\"fs\":[{\"id\":\"_fs0\""), "\(info)")
        if FileManager.default.fileExists(atPath: "/usr/lib/python3/dist-packages/yaml") {
            #expect(CHWireFormatTests.openAPIProblems(info, "VmInfo").isEmpty, "\(CHWireFormatTests.openAPIProblems(info, "VmInfo"))")
        }
        // Without shared RAM a share is refused before anything is opened.
        let plain = try APIVMM(try APITests().guestArguments("hotplug"))
        let refused = plain.curl("PUT", "vm.add-fs", body: "{\"tag\":\"x\",\"socket\":\"\(socket)\"}")
        #expect(refused.status == 400 && refused.body.contains("give --memory shared=on"), "\(refused.body)")
        #expect(plain.shutdown() == 0)

        backend.terminate()
        backend.waitUntilExit()
        #expect(eventually(10) { vmm.stderr.contains("warning: virtio-fs0: the vhost-user backend closed its socket") }, "\(vmm.stderr)")
        #expect(vmm.state == "Running")
        #expect(vmm.curl("PUT", "vm.remove-device", body: "{\"id\":\"_fs0\"}").status == 204)
        #expect(eventually(10) { vmm.stdout.contains("slot ejected") }, "\(vmm.stdout)")
        #expect(eventually(10) { !vmm.curl("GET", "vm.info").body.contains("_fs0") })
        let gone = vmm.curl("PUT", "vm.add-fs", body: "{\"tag\":\"again\",\"socket\":\"\(socket)\"}")
        #expect(gone.status == 500 && gone.body.contains("cannot connect"), "\(gone.body)")
        #expect(vmm.shutdown() == 0)
    }
}

extension VhostUserTests {
    /// The frontend's deadline for a reply after the handshake (VHOST_USER_REPLY_TIMEOUT_MS).
    static let replyDeadline = 30.0

    @Test("a backend that answers the device's start after the deadline: logged once, the VMM runs on, and the backend is asked nothing more — its late answer is never read as a later request's, across the guest's reset and a reboot",
          .enabled(if: APITests.curlAvailable))
    func lateBackend() throws {
        let (dir, _, socket) = try shareDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let logPath = dir + "/backend.log"
        let log = open(logPath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        let null = open("/dev/null", O_RDWR | O_CLOEXEC)
        let fixture = Guests.repository.appendingPathComponent("Tests/Fixtures/vhost_user_stall.py").path
        let backend = try Child("/usr/bin/python3", [fixture, socket, "\(Self.replyDeadline + 3)"], stdin: null, stdout: log, stderr: log)
        [log, null].forEach { close($0) }
        defer { backend.terminate(); backend.waitUntilExit() }
        #expect(eventually(10) { FileManager.default.fileExists(atPath: socket) })
        let backendLog = { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }

        let vmm = try APIVMM(["--kernel", try Guests.path("virtiofs"), "--serial", "tty", "--console", "off",
                              "--memory", "size=64M,shared=on", "--fs", "tag=myfs,socket=\(socket)"])
        #expect(eventually(Self.replyDeadline + 15) {
            vmm.stderr.contains("warning: virtio-fs0: the vhost-user backend did not answer the device's start in time (Connection timed out); the device stays stopped")
        }, "\(vmm.stderr)")
        #expect(eventually(10) { backendLog().contains("late answer sent") }, "\(backendLog())")
        #expect(vmm.state == "Running")
        // A new boot's device would first reset the backend (RESET_OWNER):
        // on a connection out of step, it is not asked.
        #expect(vmm.curl("PUT", "vm.reboot").status == 204)
        #expect(eventually(15) { vmm.stdout.components(separatedBy: "tag [myfs]").count > 2 }, "\(vmm.stdout)")
        #expect(eventually(15) { vmm.stderr.contains("virtio-fs0: the vhost-user backend is gone (Connection reset by peer); the device stays stopped") },
                "\(vmm.stderr)")
        // The greeting (GET_FEATURES, GET_PROTOCOL_FEATURES, SET_PROTOCOL_FEATURES, SET_OWNER), then the stalled SET_FEATURES: nothing after.
        let requests = backendLog().split(separator: "\n").filter { $0.hasPrefix("request ") }
        #expect(requests == ["request 1", "request 15", "request 16", "request 3", "request 2"], "\(backendLog())")
        #expect(vmm.state == "Running")
        #expect(vmm.shutdown() == 0, "\(vmm.stderr)")
    }
}

extension VhostUserTests {
    static let storageDaemon = "/usr/bin/qemu-storage-daemon"

    /// qemu-storage-daemon exporting `image` as vhost-user-blk on `socket`, once its socket is there.
    static func startStorageDaemon(image: String, socket: String) throws -> Child {
        let null = open("/dev/null", O_RDWR)
        defer { close(null) }
        let daemon = try Child(storageDaemon, ["--blockdev", "driver=file,node-name=file0,filename=\(image)",
                                               "--export", "type=vhost-user-blk,id=exp0,node-name=file0,addr.type=unix,addr.path=\(socket),writable=on"],
                               stdin: null, stdout: null, stderr: null)
        #expect(eventually(10) { FileManager.default.fileExists(atPath: socket) })
        return daemon
    }

    @Test("a disk served by qemu-storage-daemon (vhost-user-blk) under seccomp: its capacity from the backend's config, a read, a write that lands in the image",
          .enabled(if: FileManager.default.isExecutableFile(atPath: storageDaemon)))
    func vhostUserBlk() throws {
        let (dir, _, _) = try shareDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let image = dir + "/disk.raw", socket = dir + "/blk.sock"
        var bytes = Data(count: 1 << 20)
        bytes.replaceSubrange(0..<25, with: Data("first sector of the image".utf8))
        try bytes.write(to: URL(fileURLWithPath: image))
        let daemon = try Self.startStorageDaemon(image: image, socket: socket)
        defer { daemon.terminate(); daemon.waitUntilExit() }
        let r = runVMM(["--kernel", try Guests.path("vhostblk"), "--serial", "tty", "--console", "off",
                        "--memory", "size=64M,shared=on", "--disk", "vhost_user=on,socket=\(socket)", "-v"])
        #expect(r.status == 0, "\(r.stderr)")
        for line in ["capacity 0x00000800 sectors", "read status 0x00000000 [first sector of ]",
                     "write status 0x00000000 read back 0x00000000 [written by guest]", "vhostblk done"] {
            #expect(r.stdout.contains(line + "\n"), "missing '\(line)': \(r.stdout)")
        }
        #expect(r.stderr.contains("vhost-blk0: vhost-user backend \(socket), 1 queue(s), at 0000:00:01.0"), "\(r.stderr)")
        let written = try Data(contentsOf: URL(fileURLWithPath: image))
        #expect(String(decoding: written[512..<528], as: UTF8.self) == "written by guest")
        // The disk's own keys are the backend's to decide; and it needs shared RAM like any vhost-user device.
        let path = runVMM(["--kernel", try Guests.path("hello"), "--memory", "size=64M,shared=on", "--disk", "vhost_user=on,socket=\(socket),path=/x"])
        #expect(path.status == 1 && path.stderr.hasSuffix("--disk: path= is the vhost-user backend's to decide: give vhost_user=on with socket= (and num_queues, queue_size, id, pci_segment)\n"), "\(path.stderr)")
        let plain = runVMM(["--kernel", try Guests.path("hello"), "--disk", "vhost_user=on,socket=\(socket)"])
        #expect(plain.stderr == "cloud-hypervisor: error: --disk vhost_user=on: a vhost-user backend maps guest RAM: give --memory shared=on\n", "\(plain.stderr)")
        // virtiofsd is no block backend: it gives no config.
        if Virtiofsd.available {
            let (fsDir, share, fsSocket) = try shareDirectory()
            defer { try? FileManager.default.removeItem(atPath: fsDir) }
            let fsd = try Virtiofsd.start(share: share, socket: fsSocket)
            defer { fsd.terminate(); fsd.waitUntilExit() }
            let wrong = runVMM(["--kernel", try Guests.path("hello"), "--memory", "size=64M,shared=on", "--disk", "vhost_user=on,socket=\(fsSocket)"])
            #expect(wrong.status == 1)
            #expect(wrong.stderr.contains("it is not a vhost-user-blk backend"), "\(wrong.stderr)")
        }
    }
}

extension VhostUserTests {
    @Test("a vhost-user disk hot-added and removed 1,000 times under seccomp, on one qemu-storage-daemon: each connection closed, descriptors and memory flat",
          .enabled(if: FileManager.default.isExecutableFile(atPath: storageDaemon) && APITests.curlAvailable))
    func vhostUserDiskCycles() throws {
        let (dir, _, _) = try shareDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let image = dir + "/disk.raw", socket = dir + "/blk.sock"
        try Data(count: 1 << 20).write(to: URL(fileURLWithPath: image))
        let daemon = try Self.startStorageDaemon(image: image, socket: socket)
        defer { daemon.terminate(); daemon.waitUntilExit() }
        let vmm = try APIVMM(["--kernel", try Guests.path("hotplug"), "--serial", "tty", "--console", "off",
                              "--memory", "size=64M,shared=on", "--seccomp", "true"])
        try vmm.flatOverCycles { client in
            try client.request("PUT", "vm.add-disk", body: Array("{\"vhost_user\":true,\"vhost_socket\":\"\(socket)\"}".utf8))
        }
        #expect(vmm.shutdown() == 0)
    }

    @Test("a share hot-added and removed 1,000 times under seccomp, each on a new virtiofsd (it ends with its frontend): descriptors and memory flat",
          .enabled(if: APITests.curlAvailable))
    func fsCycles() throws {
        let (dir, share, socket) = try shareDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let vmm = try APIVMM(["--kernel", try Guests.path("hotplug"), "--serial", "tty", "--console", "off",
                              "--memory", "size=64M,shared=on", "--seccomp", "true"])
        var backend: Child?
        defer { backend?.terminate(); backend?.waitUntilExit() }
        try vmm.flatOverCycles { client in
            backend?.waitUntilExit()
            try? FileManager.default.removeItem(atPath: socket)
            backend = try Virtiofsd.start(share: share, socket: socket)
            let body = Array("{\"tag\":\"kataShared\",\"socket\":\"\(socket)\"}".utf8)
            let added = try client.request("PUT", "vm.add-fs", body: body)
            // virtiofsd makes its socket file a moment before it listens on it.
            guard added.status == 500, added.text.contains("Connection refused") else { return added }
            usleep(100_000)
            return try client.request("PUT", "vm.add-fs", body: body)
        }
        #expect(vmm.shutdown() == 0)
    }
}
