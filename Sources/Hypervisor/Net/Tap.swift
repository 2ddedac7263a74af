import CVMMCore

#if canImport(Glibc)
import Glibc
#endif

/// A `--net` tap, opened (or adopted from `fd=`) and configured once per
/// launch while the VMM may still hold CAP_NET_ADMIN; every boot's
/// virtio-net device serves these queues. The guest's MAC is fixed here
/// too, so a reboot keeps its address.
final class Tap {
    let config: NetConfig
    let name: String
    /// One per queue pair.
    let fds: [Int32]
    let guestMAC: MACAddress
    /// What the guest is told: the tap's MTU.
    let mtu: Int
    /// `tap=` named a tap that was already there: its addresses are its owner's.
    let existed: Bool

    init(_ config: NetConfig) throws(VMMError) {
        self.config = config
        func refuse(_ reason: String) -> VMMError {
            .config(.unusable(option: config.fds.isEmpty ? "--net tap=\(config.tap ?? "")" : "--net fd=\(config.fds)", reason: reason))
        }
        var nameBuffer = [CChar](repeating: 0, count: Int(VMM_TAP_NAME_MAX))
        var fds: [Int32]
        var existed = false
        if config.fds.isEmpty {
            fds = [Int32](repeating: -1, count: config.queuePairs)
            let r = vmm_tap_open(config.tap, UInt32(config.queuePairs), &fds, &nameBuffer, &existed)
            switch -r {
            case 0: break
            case EPERM, EACCES:
                throw refuse("creating or opening a tap needs CAP_NET_ADMIN: run as root (--user drops it after setup), or pass a tap the caller opened with fd=")
            case ENOENT, ENODEV:
                throw refuse("/dev/net/tun is missing: load the tun module (modprobe tun)")
            case EBUSY:
                throw refuse("the tap is in use by another process")
            case EINVAL where existed && access("/sys/class/net/\(config.tap ?? "")/tun_flags", F_OK) != 0:
                // TUNSETIFF refuses an interface that is no tun device at all.
                throw refuse("an existing network interface that is not a tap: name a tap, or a new name for one to be created")
            case EINVAL where existed:
                throw refuse("the existing tap was created \(config.queuePairs > 1 ? "without" : "with") multi-queue; num_queues=\(config.numQueues) needs it \(config.queuePairs > 1 ? "with" : "without") (recreate it: ip tuntap add NAME mode tap\(config.queuePairs > 1 ? " multi_queue" : "") vnet_hdr)")
            default:
                throw refuse(String(cString: strerror(-r)))
            }
            let created = !existed
            let name = nameBuffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
            do throws(VMMError) {
                // An existing tap's addresses are its owner's, as in Cloud Hypervisor.
                if created, let ip = config.ip, let mask = config.mask {
                    try Self.check(vmm_tap_set_ipv4(name, ip.networkOrder, mask.networkOrder), refuse, "set its address \(ip)/\(mask)")
                }
                if let mac = config.hostMAC {
                    try Self.check(vmm_tap_set_mac(name, mac.bytes), refuse, "set its MAC \(mac)")
                }
                if let mtu = config.mtu {
                    try Self.check(vmm_tap_set_mtu(name, UInt32(mtu)), refuse, "set its MTU \(mtu)")
                }
                try Self.check(vmm_tap_up(name), refuse, "bring it up")
            } catch {
                fds.forEach { close($0) }
                throw error
            }
        } else {
            fds = config.fds
            for fd in fds {
                let r = vmm_tap_adopt(fd, fds.count > 1, &nameBuffer)
                switch -r {
                case 0: continue
                case EBADF: throw refuse("descriptor \(fd) is not open: the caller must leave it open across exec (no O_CLOEXEC)")
                case ENOTTY: throw refuse("descriptor \(fd) is not a tap opened with IFF_TAP | IFF_NO_PI | IFF_VNET_HDR")
                case EINVAL: throw refuse("descriptor \(fd) is a tap without IFF_MULTI_QUEUE; several queue pairs need it")
                default: throw refuse("descriptor \(fd): \(String(cString: strerror(-r)))")
                }
            }
        }
        name = nameBuffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        self.fds = fds
        self.existed = existed
        guestMAC = config.mac ?? .random()
        var mtu: UInt32 = 1500
        if config.mtu == nil, vmm_tap_get_mtu(name, &mtu) != 0 { mtu = 1500 }
        self.mtu = config.mtu ?? Int(mtu)
    }

    private static func check(_ r: Int32, _ refuse: (String) -> VMMError, _ what: String) throws(VMMError) {
        guard r == 0 else {
            let reason = -r == EPERM || -r == EACCES ? "needs CAP_NET_ADMIN" : String(cString: strerror(-r))
            throw refuse("\(what): \(reason)")
        }
    }

    deinit { fds.forEach { close($0) } }
}
