#if canImport(Glibc)
import Glibc
#endif

/// Where a migration goes or comes from, as Cloud Hypervisor writes it:
/// `unix:/path/to/socket` or `tcp:HOST:PORT` (`tcp:0.0.0.0:PORT` to
/// listen on every address). Hosts are IP addresses: the VMM resolves no
/// names (a confined VMM thread reads no resolver files).
public enum MigrationURL: Sendable, Equatable, CustomStringConvertible {
    case unix(path: String)
    case tcp(host: String, port: UInt16)

    public init(parsing text: String, option: String) throws(ConfigError) {
        if text.hasPrefix("unix:") {
            let path = String(text.dropFirst("unix:".count))
            guard !path.isEmpty else { throw .invalidValue(option: option, key: nil, value: text, reason: "give the socket's path: unix:/path/to/socket") }
            self = .unix(path: path)
            return
        }
        guard text.hasPrefix("tcp:") else {
            throw .invalidValue(option: option, key: nil, value: text, reason: "expected unix:/path/to/socket or tcp:HOST:PORT")
        }
        let address = text.dropFirst("tcp:".count)
        guard let colon = address.lastIndex(of: ":"), let port = UInt16(address[address.index(after: colon)...]), port > 0 else {
            throw .invalidValue(option: option, key: nil, value: text, reason: "expected tcp:HOST:PORT with a port from 1 to 65535")
        }
        var host = String(address[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        guard Self.isIPAddress(host) else {
            throw .invalidValue(option: option, key: nil, value: text, reason: "\(host.isEmpty ? "the host is missing" : "\(host) is not an IP address"): give an IPv4 or [IPv6] address")
        }
        self = .tcp(host: host, port: port)
    }

    static func isIPAddress(_ host: String) -> Bool {
        var v4 = in_addr()
        var v6 = in6_addr()
        return inet_pton(AF_INET, host, &v4) == 1 || inet_pton(AF_INET6, host, &v6) == 1
    }

    public var description: String {
        switch self {
        case .unix(let path): "unix:\(path)"
        case .tcp(let host, let port): host.contains(":") ? "tcp:[\(host)]:\(port)" : "tcp:\(host):\(port)"
        }
    }
}

/// Cloud Hypervisor's `send-migration` (`vm.send-migration`'s body): the
/// destination, the downtime the iterative copy aims for, the time the
/// whole migration may take and what happens past it (`cancel`: the
/// source keeps running; `ignore`: stop and copy the rest anyway).
public struct SendMigrationConfig: Sendable, Equatable {
    public enum TimeoutStrategy: String, Sendable { case cancel, ignore }

    public var destination: MigrationURL
    /// Over a UNIX socket, hand the guest's RAM (a memfd, `shared=on`)
    /// instead of copying it.
    public var local: Bool
    public var downtimeMs: UInt64
    public var timeoutS: UInt64
    public var timeoutStrategy: TimeoutStrategy

    public static let defaultDowntimeMs: UInt64 = 300
    public static let defaultTimeoutS: UInt64 = 3600

    static let known = ["destination_url", "local", "preserve_source", "downtime_ms", "timeout_s", "timeout_strategy",
                        "connections", "tls_dir", "memory_mode"]

    public init(destination: MigrationURL, local: Bool = false, downtimeMs: UInt64 = defaultDowntimeMs,
                timeoutS: UInt64 = defaultTimeoutS, timeoutStrategy: TimeoutStrategy = .cancel) {
        self.destination = destination
        self.local = local
        self.downtimeMs = downtimeMs
        self.timeoutS = timeoutS
        self.timeoutStrategy = timeoutStrategy
    }

    /// `destination_url=unix:/tmp/sock,local=on`, or a bare URL as older
    /// ch-remote sent it.
    public init(parsing text: String) throws(ConfigError) {
        let option = "send-migration"
        let list = try OptionList(text.contains("=") ? text : "destination_url=\(text)", option: option, known: Self.known)
        try list.refuseUnsupported(["tls_dir", "preserve_source", "connections"],
                                   unlessEqualTo: ["preserve_source": "off", "connections": "1"])
        try refusePostcopy(list, option: option)
        let destination = try MigrationURL(parsing: try list.required("destination_url"), option: "\(option) destination_url")
        let local = try list.bool("local") ?? false
        if local, case .tcp = destination {
            throw .conflict("send-migration local=on hands RAM over a UNIX socket on one host: use destination_url=unix:/path")
        }
        let strategy = try list["timeout_strategy"].map { (text) throws(ConfigError) in
            guard let strategy = TimeoutStrategy(rawValue: text.lowercased()) else {
                throw .invalidValue(option: option, key: "timeout_strategy", value: text, reason: "expected cancel or ignore")
            }
            return strategy
        }
        self.init(destination: destination, local: local,
                  downtimeMs: try list.integer("downtime_ms", in: 1...UInt64(Int64.max)) ?? Self.defaultDowntimeMs,
                  timeoutS: try list.integer("timeout_s", in: 1...UInt64(Int32.max)) ?? Self.defaultTimeoutS,
                  timeoutStrategy: strategy ?? .cancel)
    }
}

/// Cloud Hypervisor's `receive-migration` (`vm.receive-migration`'s body).
public struct ReceiveMigrationConfig: Sendable, Equatable {
    public var receiver: MigrationURL

    static let known = ["receiver_url", "tls_dir", "memory_mode", "vfio_fds", "iommufd_fd", "zone_updates"]

    public init(receiver: MigrationURL) { self.receiver = receiver }

    /// `receiver_url=tcp:0.0.0.0:6000`, or a bare URL.
    public init(parsing text: String) throws(ConfigError) {
        let option = "receive-migration"
        let list = try OptionList(text.contains("=") ? text : "receiver_url=\(text)", option: option, known: Self.known)
        try list.refuseUnsupported(["tls_dir", "vfio_fds", "iommufd_fd", "zone_updates"])
        try refusePostcopy(list, option: option)
        self.init(receiver: try MigrationURL(parsing: try list.required("receiver_url"), option: "\(option) receiver_url"))
    }
}

/// Pre-copy is what is built; Cloud Hypervisor's JSON spells it `Precopy`.
private func refusePostcopy(_ list: OptionList, option: String) throws(ConfigError) {
    if let mode = list["memory_mode"], mode.lowercased() != "precopy" {
        guard mode.lowercased() == "postcopy" else {
            throw .invalidValue(option: option, key: "memory_mode", value: mode, reason: "expected precopy or postcopy")
        }
        throw .notSupported("\(option) memory_mode=\(mode) (pre-copy is built)")
    }
}
