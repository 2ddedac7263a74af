import Foundation
@testable import Hypervisor
import Testing

/// Cloud Hypervisor's own HTTP client (`api_client`, which its ch-remote
/// uses), rule for rule, so that an answer it could not read fails here:
/// the request goes out in its pieces (the head with any descriptors, then
/// `Content-Length` only with a body, the blank line, the body); the answer
/// is read 256 bytes at a time, each piece decoded as UTF-8 on its own
/// (where it would panic), until CRLFCRLF and then `Content-Length: ` bytes
/// (that spelling only; without it the answer ends with its head); the
/// status is what stands between `HTTP/1.1 ` and the first CR, trimmed;
/// 200, 204 and 100 are success.
struct CloudHypervisorClient {
    struct Answer {
        var status: Int
        /// nil when the answer had no Content-Length (as that client's `None`).
        var body: String?
        var isSuccess: Bool { [100, 200, 204].contains(status) }
    }

    struct Failure: Error, CustomStringConvertible { let description: String }

    let socket: String

    func request(_ method: String, _ command: String, body: String? = nil) throws -> Answer {
        let fd = APIVMM.connect(socket)
        guard fd >= 0 else { throw Failure(description: "connect \(socket)") }
        defer { close(fd) }
        var pieces = ["\(method) /api/v1/\(command) HTTP/1.1\r\nHost: localhost\r\nAccept: */*\r\n"]
        if let body { pieces.append("Content-Length: \(body.utf8.count)\r\n") }
        pieces.append("\r\n")
        if let body { pieces.append(body) }
        for piece in pieces {
            let bytes = Array(piece.utf8)
            guard bytes.withUnsafeBytes({ send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }) == bytes.count else {
                throw Failure(description: "send")
            }
        }

        var response = ""
        var bodyOffset: String.Index?
        var contentLength: Int?
        while true {
            var chunk = [UInt8](repeating: 0, count: 256)
            var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&poller, 1, 10_000) == 1 else { throw Failure(description: "no answer within 10 s to \(command)") }
            let count = read(fd, &chunk, chunk.count)
            guard count >= 0 else { throw Failure(description: "read") }
            if count == 0 { break }
            guard let text = String(validating: chunk[0..<count], as: UTF8.self) else {
                throw Failure(description: "a 256-byte piece of the answer to \(command) is not UTF-8 alone: that client panics")
            }
            response += text
            if let end = response.range(of: "\r\n\r\n") {
                bodyOffset = end.upperBound
                if let header = response.range(of: "Content-Length: ") {
                    let value = String(response[header.upperBound...].unicodeScalars.prefix { $0 != "\r" })
                    guard let length = Int(value.trimmingCharacters(in: .whitespaces)) else {
                        throw Failure(description: "Content-Length '\(value)' does not parse")
                    }
                    contentLength = length
                } else {
                    break
                }
            }
            if let bodyOffset, let contentLength, response.utf8.count >= response.utf8.distance(from: response.startIndex, to: bodyOffset) + contentLength {
                break
            }
        }
        guard let line = response.range(of: "HTTP/1.1") else { throw Failure(description: "missing protocol: \(response)") }
        let code = String(response[line.upperBound...].unicodeScalars.dropFirst().prefix { $0 != "\r" })
        guard let status = Int(code.trimmingCharacters(in: .whitespaces)) else {
            throw Failure(description: "status code '\(code)' does not parse (\"invalid digit found in string\")")
        }
        let body = contentLength.flatMap { _ in bodyOffset.map { String(response[$0...]) } }
        return Answer(status: status, body: body)
    }
}

@Suite("Cloud Hypervisor's wire format", .enabled(if: Host.hasKVM, Host.kvmSkipReason), .serialized)
struct CHWireFormatTests {
    @Test("every answer, success or error, is read by Cloud Hypervisor's own client; each ch-remote command's request is Cloud Hypervisor's")
    func everyCommand() throws {
        let vmm = try APIVMM([])
        let client = CloudHypervisorClient(socket: vmm.socket)
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("chwire-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let disks = (0..<2).map { dir.appendingPathComponent("d\($0).raw").path }
        for disk in disks { _ = FileManager.default.createFile(atPath: disk, contents: Data(count: 1 << 20)) }
        // What Cloud Hypervisor's ch-remote sends for `add-disk path=…`: its
        // DiskConfig serialized whole (serde, absent fields left out).
        func diskBody(_ path: String) -> String {
            """
            {"pci_segment":0,"path":"\(path)","readonly":false,"direct":false,"num_queues":1,"queue_size":128,\
            "vhost_user":false,"disable_io_uring":false,"disable_aio":false,"backing_files":false,"sparse":true,\
            "image_type":"Unknown","lock_granularity":"ByteRange"}
            """
        }
        let kernel = try Guests.path("ticker")
        let vsock = FileManager.default.temporaryDirectory.appendingPathComponent("chwire-\(getpid()).vsock").path

        // (ch-remote command, method, endpoint, body, the status this VMM answers)
        let steps: [(String, String, String, String?, Int)] = [
            ("ping", "GET", "vmm.ping", nil, 200),
            ("info", "GET", "vm.info", nil, 404),
            ("boot", "PUT", "vm.boot", nil, 404),
            ("create", "PUT", "vm.create", APITests.createBody.replacingOccurrences(of: "KERNEL", with: kernel), 204),
            ("create", "PUT", "vm.create", APITests.createBody.replacingOccurrences(of: "KERNEL", with: kernel), 500),
            ("add-disk", "PUT", "vm.add-disk", diskBody(disks[0]), 204),
            ("add-net", "PUT", "vm.add-net", """
                {"pci_segment":0,"tap":"chwire0","num_queues":2,"queue_size":256,"vhost_user":false,"vhost_mode":"Client",\
                "offload_tso":true,"offload_ufo":true,"offload_csum":true}
                """, 204),
            ("remove-device", "PUT", "vm.remove-device", "{\"id\":\"_net1\"}", 204),
            ("remove-device", "PUT", "vm.remove-device", "{\"id\":\"nothing\"}", 404),
            ("resize", "PUT", "vm.resize", "{\"desired_vcpus\":2,\"desired_ram\":null,\"desired_balloon\":null}", 204),
            ("boot", "PUT", "vm.boot", nil, 204),
            ("info", "GET", "vm.info", nil, 200),
            ("counters", "GET", "vm.counters", nil, 200),
            ("pause", "PUT", "vm.pause", nil, 204),
            ("pause", "PUT", "vm.pause", nil, 500),
            ("resume", "PUT", "vm.resume", nil, 204),
            ("add-disk", "PUT", "vm.add-disk", diskBody(disks[1]), 200),
            ("add-disk", "PUT", "vm.add-disk", diskBody(disks[1]) + "x", 400),
            ("add-device", "PUT", "vm.add-device", "{\"pci_segment\":0,\"path\":\"/sys/bus/pci/devices/0000:7f:1f.7/\",\"x_exclude_mmap_bars\":[]}", 500),
            ("power-button", "PUT", "vm.power-button", nil, 204),
            ("nmi", "PUT", "vm.nmi", nil, 400),
            ("add-fs", "PUT", "vm.add-fs", "{\"pci_segment\":0,\"tag\":\"myfs\",\"socket\":\"/tmp/fs.sock\",\"num_queues\":1,\"queue_size\":1024}", 400), // no shared RAM
            ("add-pmem", "PUT", "vm.add-pmem", "{\"pci_segment\":0,\"file\":\"/tmp/pmem\",\"discard_writes\":false}", 400),
            ("add-vsock", "PUT", "vm.add-vsock", "{\"pci_segment\":0,\"cid\":3,\"socket\":\"\(vsock)\"}", 200),
            ("add-vsock", "PUT", "vm.add-vsock", "{\"pci_segment\":0,\"cid\":4,\"socket\":\"\(vsock)2\"}", 400),
            ("add-vdpa", "PUT", "vm.add-vdpa", "{\"pci_segment\":0,\"path\":\"/dev/vhost-vdpa-0\",\"num_queues\":1}", 400),
            ("add-user-device", "PUT", "vm.add-user-device", "{\"pci_segment\":0,\"socket\":\"/tmp/u.sock\"}", 400),
            ("add-generic-vhost-user", "PUT", "vm.add-generic-vhost-user",
             "{\"pci_segment\":0,\"socket\":\"/tmp/g.sock\",\"device_type\":26,\"queue_sizes\":[256]}", 400),
            ("resize-disk", "PUT", "vm.resize-disk", "{\"id\":\"_disk0\",\"desired_size\":2097152}", 400),
            ("resize-zone", "PUT", "vm.resize-zone", "{\"id\":\"mem0\",\"desired_ram\":1073741824}", 400),
            ("snapshot", "PUT", "vm.snapshot", "{\"destination_url\":\"file:///tmp/snap\"}", 500), // running: pause first
            ("coredump", "PUT", "vm.coredump", "{\"destination_url\":\"file:///tmp/core\"}", 400),
            ("restore", "PUT", "vm.restore", "{\"source_url\":\"file:///tmp/snap\",\"prefault\":false}", 500), // a VM exists
            ("send-migration", "PUT", "vm.send-migration", "{\"destination_url\":\"unix:/nonexistent/mig\",\"local\":false}", 500), // no receiver
            ("receive-migration", "PUT", "vm.receive-migration", "{\"receiver_url\":\"unix:/tmp/mig\"}", 500), // a VM exists
            ("reboot", "PUT", "vm.reboot", nil, 204),
            ("shutdown", "PUT", "vm.shutdown", nil, 204),
            ("delete", "PUT", "vm.delete", nil, 204),
            ("info", "GET", "vm.info", nil, 404),
            ("shutdown-vmm", "PUT", "vmm.shutdown", nil, 204),
        ]
        let unbuilt: Set = ["nmi", "add-pmem", "add-vdpa", "add-user-device", "add-generic-vhost-user",
                            "resize-disk", "resize-zone", "coredump"]
        for (command, method, endpoint, body, expected) in steps {
            let answer: CloudHypervisorClient.Answer
            do {
                answer = try client.request(method, endpoint, body: body)
            } catch {
                Issue.record("\(command): \(error)")
                continue
            }
            #expect(answer.status == expected, "\(command) (\(endpoint)): \(answer.status) \(answer.body ?? "")")
            if answer.status == 204 {
                #expect(answer.body == nil, "\(command): a 204 has no Content-Length, so that client prints nothing")
            } else {
                // 200: the JSON it prints; an error: Cloud Hypervisor's list of messages.
                let body = try #require(answer.body, "\(command): no Content-Length on a \(answer.status)")
                let json = try JSONSerialization.jsonObject(with: Data(body.utf8))
                #expect(answer.isSuccess ? json is [String: Any] : (json as? [String])?.isEmpty == false, "\(command): \(body)")
            }
            if unbuilt.contains(command) {
                #expect(answer.body?.contains("is not supported yet") == true, "\(command): \(answer.body ?? "")")
            }
        }
        #expect(eventually(10) { !vmm.child.isRunning })
        #expect(vmm.child.terminationStatus == 0)
    }

    /// Problems `openapi_check.py` finds in `json` against Cloud
    /// Hypervisor's schema `name`; empty when valid.
    static func openAPIProblems(_ json: String, _ name: String) -> String {
        let fixtures = Guests.repository.appendingPathComponent("Tests/Fixtures")
        let r = run("/usr/bin/python3", [fixtures.appendingPathComponent("openapi_check.py").path,
                                         fixtures.appendingPathComponent("cloud-hypervisor.yaml").path, name], input: json)
        return r.status == 0 ? "" : "\(r.stdout)\(r.stderr)"
    }

    @Test("vm.info, vmm.ping and vm.counters are valid against Cloud Hypervisor's OpenAPI description: types, required fields, no null where it allows none, no field it lacks",
          .enabled(if: APITests.curlAvailable && FileManager.default.fileExists(atPath: "/usr/lib/python3/dist-packages/yaml")))
    func openAPI() throws {
        let disk = FileManager.default.temporaryDirectory.appendingPathComponent("openapi-\(getpid()).raw").path
        FileManager.default.createFile(atPath: disk, contents: Data(count: 1 << 20))
        defer { try? FileManager.default.removeItem(atPath: disk) }
        // Created, with the configuration Kata sends.
        let created = try APIVMM([])
        let body = APITests.createBody.replacingOccurrences(of: "KERNEL", with: try Guests.path("ticker"))
        #expect(created.curl("PUT", "vm.create", body: body).status == 204)
        var answers = [("VmInfo", created.curl("GET", "vm.info").body), ("VmmPingResponse", created.curl("GET", "vmm.ping").body)]
        // Running, with disks (one hot-added on segment 1), a network, RAM and vCPU hotplug room and a landlock rule.
        let running = try APIVMM(["--kernel", try Guests.path("hotplug"), "--serial", "tty", "--console", "off",
                                  "--cpus", "boot=1,max=2", "--memory", "size=64M,hotplug_size=128M",
                                  "--platform", "num_pci_segments=2", "--disk", "path=\(disk),readonly=on,serial=abc",
                                  "--net", "tap=chinfo0,ip=10.207.0.1,mask=255.255.255.0,mac=12:34:56:78:90:ab"],
                                 launcher: ["/usr/bin/unshare", "-n", "--"])
        #expect(eventually(10) { running.stdout.contains("hotplug guest ready") })
        #expect(running.curl("PUT", "vm.add-disk", body: "{\"path\":\"\(disk)\",\"readonly\":true,\"pci_segment\":1}").status == 200)
        let vsock = FileManager.default.temporaryDirectory.appendingPathComponent("openapi-\(getpid()).vsock").path
        #expect(running.curl("PUT", "vm.add-vsock", body: "{\"cid\":7,\"socket\":\"\(vsock)\"}").status == 200)
        answers += [("VmInfo", running.curl("GET", "vm.info").body), ("VmCounters", running.curl("GET", "vm.counters").body)]
        for (schema, json) in answers {
            #expect(!json.isEmpty && Self.openAPIProblems(json, schema).isEmpty, "\(schema): \(Self.openAPIProblems(json, schema)) in \(json)")
        }
        // The checker itself: a null where none is allowed, a missing field, a wrong type.
        #expect(Self.openAPIProblems("{\"config\":{\"payload\":{}},\"state\":\"Running\",\"device_tree\":null}", "VmInfo")
                .contains("VmInfo.device_tree: null"))
        #expect(Self.openAPIProblems("{\"state\":\"Running\"}", "VmInfo").contains("required field 'config' is missing"))
        #expect(Self.openAPIProblems("{\"config\":{\"payload\":{},\"bogus\":1},\"state\":\"Running\"}", "VmInfo")
                .contains("field 'bogus' is not in the schema"))
        #expect(Self.openAPIProblems("{\"config\":{\"payload\":{}},\"state\":\"Asleep\"}", "VmInfo").contains("is not one of"))
    }

    @Test("an answer's bytes: no reason phrase, keep-alive, Content-Length spelled as that client looks it up, ASCII only")
    func answerBytes() {
        var ok = HTTPResponse(status: 200, body: JSONValue.object(["path": .string("/tmp/dïsk😀"), "none": .null]).serialized)
        #expect(String(decoding: ok.serialized(), as: UTF8.self) == """
            HTTP/1.1 200 \r\nServer: Cloud Hypervisor API\r\nConnection: keep-alive\r\nContent-Type: application/json\r\n\
            Content-Length: 37\r\n\r\n{"path":"/tmp/d\\u00efsk\\ud83d\\ude00"}
            """)
        ok.close = true
        #expect(String(decoding: ok.serialized(), as: UTF8.self).contains("\r\nConnection: close\r\n"))
        #expect(String(decoding: HTTPResponse.noContent.serialized(), as: UTF8.self)
                == "HTTP/1.1 204 \r\nServer: Cloud Hypervisor API\r\nConnection: keep-alive\r\n\r\n")
        #expect(HTTPResponse.error(400, "bad\u{1}é").serialized().allSatisfy { $0 < 0x80 })
        // The escapes decode back to the text.
        let decoded = try? JSONSerialization.jsonObject(with: Data(JSONValue.string("dïsk😀\u{1}").serialized), options: .fragmentsAllowed)
        #expect(decoded as? String == "dïsk😀\u{1}")
    }
}
