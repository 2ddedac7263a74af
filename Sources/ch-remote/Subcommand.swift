import Hypervisor

#if canImport(Glibc)
import Glibc
#endif

/// One of ch-remote's subcommands: the endpoint it calls and how its
/// arguments become the request's body.
struct Subcommand: Sendable {
    let method: String
    let endpoint: String
    let body: @Sendable ([String]) throws -> [UInt8]?
    /// Descriptors of this process sent with the request (SCM_RIGHTS).
    var descriptors: @Sendable ([String]) throws -> [Int32] = { _ in [] }

    struct UsageError: Error, CustomStringConvertible { let description: String }

    static func simple(_ method: String, _ endpoint: String) -> Subcommand {
        Subcommand(method: method, endpoint: endpoint) { arguments in
            guard arguments.isEmpty else { throw UsageError(description: "\(endpoint) takes no arguments") }
            return nil
        }
    }

    /// `add-disk path=…,readonly=on`: checked by the command line's parser,
    /// sent as the JSON object Cloud Hypervisor's API takes.
    static func add(_ endpoint: String, check: (@Sendable (String) throws -> Void)? = nil) -> Subcommand {
        Subcommand(method: "PUT", endpoint: endpoint) { arguments in
            guard arguments.count == 1 else { throw UsageError(description: "\(endpoint) takes one key=value,… argument") }
            try check?(arguments[0])
            return try APIJSON.object(fromOptions: arguments[0], option: endpoint)
        }
    }

    /// `restore source_url=file:///DIR,net_fds=[net0@[3,4]]`: as Cloud
    /// Hypervisor's ch-remote, the taps open in this process go with the
    /// request, and the body says how many each net takes.
    static let restore: Subcommand = {
        var command = Subcommand(method: "PUT", endpoint: "vm.restore") { arguments in
            guard arguments.count == 1 else { throw UsageError(description: "vm.restore takes one key=value,… argument") }
            return APIJSON.body(try RestoreConfig(parsing: arguments[0]))
        }
        command.descriptors = { arguments in
            let fds = arguments.count == 1 ? try RestoreConfig(parsing: arguments[0]).netFDs.flatMap(\.fds) : []
            for fd in fds where fcntl(fd, F_GETFD) < 0 {
                throw UsageError(description: "restore net_fds: descriptor \(fd) is not open in ch-remote (open the tap and pass it to ch-remote)")
            }
            return fds
        }
        return command
    }()

    /// `send-migration destination_url=unix:/tmp/sock,downtime_ms=200` (or
    /// the bare URL older ch-remote took): parsed here, sent whole.
    static func migration(_ endpoint: String, body: @escaping @Sendable (String) throws -> [UInt8]) -> Subcommand {
        Subcommand(method: "PUT", endpoint: endpoint) { arguments in
            guard arguments.count == 1 else { throw UsageError(description: "\(endpoint) takes one argument: <url> or key=value,…") }
            return try body(arguments[0])
        }
    }

    /// `add-net fd=[3,4],…`: as Cloud Hypervisor's ch-remote, the taps open
    /// in this process go with the request (the numbers in the body mean
    /// nothing to the VMM); each must be open here.
    static let addNet: Subcommand = {
        var command = add("vm.add-net") { _ = try NetConfig(parsing: $0) }
        command.descriptors = { arguments in
            let fds = arguments.count == 1 ? try NetConfig(parsing: arguments[0]).fds : []
            for fd in fds where fcntl(fd, F_GETFD) < 0 {
                throw UsageError(description: "add-net fd=\(fd): descriptor \(fd) is not open in ch-remote (open the tap and pass it to ch-remote)")
            }
            return fds
        }
        return command
    }()

    static let all: [String: Subcommand] = [
        "boot": simple("PUT", "vm.boot"),
        "delete": simple("PUT", "vm.delete"),
        "info": simple("GET", "vm.info"),
        "counters": simple("GET", "vm.counters"),
        "nmi": simple("PUT", "vm.nmi"),
        "pause": simple("PUT", "vm.pause"),
        "ping": simple("GET", "vmm.ping"),
        "power-button": simple("PUT", "vm.power-button"),
        "reboot": simple("PUT", "vm.reboot"),
        "resume": simple("PUT", "vm.resume"),
        "shutdown": simple("PUT", "vm.shutdown"),
        "shutdown-vmm": simple("PUT", "vmm.shutdown"),
        "create": Subcommand(method: "PUT", endpoint: "vm.create") { arguments in
            guard arguments.count <= 1 else { throw UsageError(description: "create takes the path of a VmConfig JSON file, or - (the default) for standard input") }
            return try readAll(arguments.first ?? "-")
        },
        "add-device": add("vm.add-device") { _ = try DeviceConfig(parsing: $0) },
        "add-disk": add("vm.add-disk") { _ = try DiskConfig(parsing: $0) },
        "add-net": addNet,
        "add-fs": add("vm.add-fs") { _ = try FsConfig(parsing: $0) },
        "add-pmem": add("vm.add-pmem"),
        "add-vsock": add("vm.add-vsock") { _ = try VsockConfig(parsing: $0) },
        "add-vdpa": add("vm.add-vdpa"),
        "add-user-device": add("vm.add-user-device"),
        "add-generic-vhost-user": add("vm.add-generic-vhost-user"),
        "remove-device": Subcommand(method: "PUT", endpoint: "vm.remove-device") { arguments in
            guard arguments.count == 1 else { throw UsageError(description: "remove-device takes the device's id") }
            return APIJSON.encode(["id": arguments[0]])
        },
        "resize": Subcommand(method: "PUT", endpoint: "vm.resize") { arguments in
            try APIJSON.flags(arguments, command: "resize", ["--cpus": ("desired_vcpus", .count),
                                                             "--memory": ("desired_ram", .size),
                                                             "--balloon": ("desired_balloon", .size)])
        },
        "resize-disk": Subcommand(method: "PUT", endpoint: "vm.resize-disk") { arguments in
            try APIJSON.flags(arguments, command: "resize-disk", ["--disk": ("id", .text), "--size": ("desired_size", .size)])
        },
        "resize-zone": Subcommand(method: "PUT", endpoint: "vm.resize-zone") { arguments in
            try APIJSON.flags(arguments, command: "resize-zone", ["--id": ("id", .text), "--size": ("desired_ram", .size)])
        },
        "snapshot": destination("vm.snapshot", what: "<destination_url>"),
        "coredump": destination("vm.coredump", what: "<file_path>"),
        "restore": restore,
        "send-migration": migration("vm.send-migration") { APIJSON.body(try SendMigrationConfig(parsing: $0)) },
        "receive-migration": migration("vm.receive-migration") { APIJSON.body(try ReceiveMigrationConfig(parsing: $0)) },
    ]

    /// `snapshot URL`, `coredump PATH`: one argument, sent as Cloud
    /// Hypervisor's client sends it, `{"destination_url": …}`.
    static func destination(_ endpoint: String, what: String) -> Subcommand {
        Subcommand(method: "PUT", endpoint: endpoint) { arguments in
            guard arguments.count == 1 else { throw UsageError(description: "\(endpoint) takes one argument: \(what)") }
            return APIJSON.encode(["destination_url": arguments[0]])
        }
    }

    static func readAll(_ path: String) throws -> [UInt8] {
        let fd = path == "-" ? STDIN_FILENO : open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw UsageError(description: "cannot read '\(path)': \(String(cString: strerror(errno)))") }
        defer { if fd != STDIN_FILENO { close(fd) } }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            let n = read(fd, &chunk, chunk.count)
            if n < 0 && errno == EINTR { continue }
            guard n >= 0 else { throw UsageError(description: "cannot read '\(path)': \(String(cString: strerror(errno)))") }
            if n == 0 { return bytes }
            bytes += chunk[0..<n]
        }
    }
}
