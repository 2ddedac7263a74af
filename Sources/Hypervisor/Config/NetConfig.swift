import CVMMCore

/// `--net tap=…,mac=…,ip=…,mask=…,host_mac=…,num_queues=N,queue_size=N,mtu=N,id=…,offload_*=on|off`
/// or `--net fd=[N,M],…`: a virtio-net device on a tap, with Cloud
/// Hypervisor's keys, defaults and checks.
public struct NetConfig: Sendable, Equatable {
    /// The tap's name; nil: a new tap the kernel names (vmtapN).
    public var tap: String?
    /// Taps the caller opened and handed over, one per queue pair.
    public var fds: [Int32]
    /// What the guest sees; nil: a random locally administered address.
    public var mac: MACAddress?
    /// The host side's address; a new tap gets it, an existing one is left as it is.
    public var ip: IPv4Address?
    public var mask: IPv4Address?
    public var hostMAC: MACAddress?
    /// Queues, receive and transmit counted apart: a pair per 2.
    public var numQueues: Int
    public var queueSize: Int
    public var mtu: Int?
    public var id: String?
    public var offloadTSO: Bool
    public var offloadUFO: Bool
    public var offloadCsum: Bool
    /// The PCI segment its function goes on.
    public var pciSegment: Int
    /// `iommu=on`: behind the virtual IOMMU.
    public var iommu = false

    public static let defaultNumQueues = 2
    public static let defaultQueueSize = 256
    /// Cloud Hypervisor's floor: IPv6 needs 1280.
    public static let minMTU = 1280
    public static let maxMTU = 65535

    public var queuePairs: Int { numQueues / 2 }

    static let known = ["tap", "ip", "mask", "mac", "host_mac", "fd", "iommu", "num_queues", "queue_size",
                        "id", "vhost_user", "socket", "vhost_mode", "bw_size", "bw_one_time_burst",
                        "bw_refill_time", "ops_size", "ops_one_time_burst", "ops_refill_time",
                        "pci_segment", "offload_tso", "offload_ufo", "offload_csum", "mtu", "pci_device_id"]

    public init(tap: String? = nil, fds: [Int32] = [], mac: MACAddress? = nil, ip: IPv4Address? = nil,
                mask: IPv4Address? = nil, hostMAC: MACAddress? = nil, numQueues: Int = defaultNumQueues,
                queueSize: Int = defaultQueueSize, mtu: Int? = nil, id: String? = nil,
                offloadTSO: Bool = true, offloadUFO: Bool = true, offloadCsum: Bool = true, pciSegment: Int = 0) {
        self.tap = tap
        self.fds = fds
        self.mac = mac
        self.ip = ip
        self.mask = mask
        self.hostMAC = hostMAC
        self.numQueues = numQueues
        self.queueSize = queueSize
        self.mtu = mtu
        self.id = id
        self.offloadTSO = offloadTSO
        self.offloadUFO = offloadUFO
        self.offloadCsum = offloadCsum
        self.pciSegment = pciSegment
    }

    public init(parsing text: String) throws(ConfigError) {
        let list = try OptionList(text, option: "--net", known: Self.known)
        try list.refuseUnsupported(["socket", "vhost_mode", "bw_size", "bw_one_time_burst", "bw_refill_time",
                                    "ops_size", "ops_one_time_burst", "ops_refill_time", "pci_device_id"])
        if try list.bool("vhost_user") == true { throw .notSupported("--net vhost_user=on") }
        func parsed<T>(_ key: String, _ make: (String) -> T?, _ expected: String) throws(ConfigError) -> T? {
            // The docs' `tap=,mac=,ip=,mask=` form: an empty value is no value.
            guard let value = list[key], !value.isEmpty else { return nil }
            guard let result = make(value) else {
                throw .invalidValue(option: "--net", key: key, value: value, reason: expected)
            }
            return result
        }
        let macForm = "expected six hexadecimal bytes such as 12:34:56:78:9a:bc"
        let ipForm = "expected an IPv4 address such as 192.168.249.1"
        let fds: [Int32] = try parsed("fd", Self.fdList, "expected a descriptor or a list such as [3,4]") ?? []
        let numQueues = try list.integer("num_queues", in: 1...2 * Int(VMM_VIRTIO_NET_MAX_PAIRS))
        let queueSize = try list.integer("queue_size", in: 2...Int(VMM_VIRTQ_MAX_SIZE)) ?? Self.defaultQueueSize
        guard queueSize & (queueSize - 1) == 0 else {
            throw .invalidValue(option: "--net", key: "queue_size", value: String(queueSize), reason: "must be a power of two")
        }
        self.init(tap: list["tap"].flatMap { $0.isEmpty ? nil : $0 }, fds: fds,
                  mac: try parsed("mac", MACAddress.init, macForm),
                  ip: try parsed("ip", IPv4Address.init, ipForm), mask: try parsed("mask", IPv4Address.init, ipForm),
                  hostMAC: try parsed("host_mac", MACAddress.init, macForm),
                  numQueues: numQueues ?? Self.defaultNumQueues, queueSize: queueSize,
                  mtu: try list.integer("mtu", in: Self.minMTU...Self.maxMTU), id: list["id"],
                  offloadTSO: try list.bool("offload_tso") ?? true, offloadUFO: try list.bool("offload_ufo") ?? true,
                  offloadCsum: try list.bool("offload_csum") ?? true, pciSegment: try list.pciSegment())
        iommu = try list.bool("iommu") ?? false
        try validate()
    }

    /// What Cloud Hypervisor checks of one `--net` on its own.
    func validate() throws(ConfigError) {
        guard numQueues >= 2, numQueues % 2 == 0 else {
            throw .invalidValue(option: "--net", key: "num_queues", value: String(numQueues),
                                reason: "queues come in receive/transmit pairs: give an even number, at least 2")
        }
        if let tap, tap.utf8.count >= Int(VMM_TAP_NAME_MAX) {
            throw .invalidValue(option: "--net", key: "tap", value: tap, reason: "an interface name has at most 15 bytes")
        }
        if !fds.isEmpty {
            guard tap == nil else { throw .conflict("--net: give tap= or fd=, not both") }
            guard fds.count * 2 == numQueues else {
                throw .conflict("--net: fd= gives \(fds.count) tap queue(s) for num_queues=\(numQueues): give one descriptor per pair of queues")
            }
            if let low = fds.first(where: { $0 <= 2 }) {
                throw .invalidValue(option: "--net", key: "fd", value: String(low), reason: "0, 1 and 2 are the standard streams, not taps")
            }
            guard Set(fds).count == fds.count else {
                throw .invalidValue(option: "--net", key: "fd", value: fds.map(String.init).joined(separator: ","), reason: "each queue needs its own descriptor")
            }
            if ip != nil || mask != nil || hostMAC != nil || mtu != nil {
                throw .conflict("--net: ip=, mask=, host_mac= and mtu= configure a tap the VMM opens; with fd= the caller configures it")
            }
        }
        if !offloadCsum && (offloadTSO || offloadUFO) {
            throw .conflict("--net: offload_tso and offload_ufo need offload_csum=on (or turn them off too)")
        }
        if (ip == nil) != (mask == nil) {
            throw .conflict(ip == nil ? "--net: mask= needs ip= too" : "--net: ip= needs mask= too (e.g. mask=255.255.255.0)")
        }
    }

    /// `3`, `[3,4]` or `[3, 4]`.
    static func fdList(_ text: String) -> [Int32]? {
        var body = Substring(text)
        if body.hasPrefix("[") && body.hasSuffix("]") { body = body.dropFirst().dropLast() }
        let items = body.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingSpaces }
        let fds = items.compactMap { Int32($0) }
        return fds.count == items.count && !fds.isEmpty && fds.allSatisfy({ $0 >= 0 }) ? fds : nil
    }
}


/// An Ethernet address, `12:34:56:78:9a:bc`.
public struct MACAddress: Sendable, Equatable, CustomStringConvertible {
    public let bytes: [UInt8]

    public init?(_ text: String) {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        let bytes = parts.compactMap { $0.count == 2 ? UInt8($0, radix: 16) : nil }
        guard parts.count == 6, bytes.count == 6 else { return nil }
        self.bytes = bytes
    }

    init(bytes: [UInt8]) { self.bytes = bytes }

    /// Unicast and locally administered, as Cloud Hypervisor makes one.
    public static func random() -> MACAddress {
        var bytes = (0..<6).map { _ in UInt8.random(in: 0...255) }
        bytes[0] = bytes[0] & 0xfe | 0x02
        return MACAddress(bytes: bytes)
    }

    public var isMulticast: Bool { bytes[0] & 1 == 1 }

    public var description: String {
        bytes.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined(separator: ":")
    }
}

/// A dotted-quad IPv4 address; `networkOrder` as the kernel wants it.
public struct IPv4Address: Sendable, Equatable, CustomStringConvertible {
    public let octets: [UInt8]

    public init?(_ text: String) {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        let octets = parts.compactMap { $0.count <= 3 && $0.allSatisfy(\.isASCII) ? UInt8($0) : nil }
        guard parts.count == 4, octets.count == 4 else { return nil }
        self.octets = octets
    }

    /// The address as stored in memory: first octet first.
    public var networkOrder: UInt32 {
        UInt32(octets[0]) | UInt32(octets[1]) << 8 | UInt32(octets[2]) << 16 | UInt32(octets[3]) << 24
    }

    public var description: String { octets.map(String.init).joined(separator: ".") }
}
