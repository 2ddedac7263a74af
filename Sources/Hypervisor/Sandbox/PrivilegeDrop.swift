import CCapNG
import CVMMCore

#if canImport(Glibc)
import Glibc
#endif

/// The user and group the VMM runs as after opening its devices and files
/// (`--user NAME|UID`, `--group NAME|GID`).
struct Identity: Equatable {
    var uid: uid_t?
    var gid: gid_t?

    /// Resolves names; a user's primary group is the default group.
    init(user: String?, group: String?) throws(ConfigError) {
        if let user {
            if let uid = uid_t(user) {
                self.uid = uid
                gid = getpwuid(uid).map { $0.pointee.pw_gid }
            } else if let entry = getpwnam(user) {
                uid = entry.pointee.pw_uid
                gid = entry.pointee.pw_gid
            } else {
                throw .invalidValue(option: "--user", key: nil, value: user, reason: "no such user")
            }
        }
        if let group {
            if let number = gid_t(group) {
                gid = number
            } else if let entry = getgrnam(group) {
                gid = entry.pointee.gr_gid
            } else {
                throw .invalidValue(option: "--group", key: nil, value: group, reason: "no such group")
            }
        }
    }
}

/// Sheds what the VMM no longer needs once everything privileged is open:
/// supplementary groups, gid, uid, every capability set (effective,
/// permitted, inheritable, bounding, ambient). Runs before any other thread
/// exists, so every later thread inherits the result.
enum PrivilegeDrop {
    static func apply(_ identity: Identity) throws(VMMError) {
        guard identity.uid != nil || identity.gid != nil else { return }
        let what = [identity.uid.map { "user \($0)" }, identity.gid.map { "group \($0)" }]
            .compactMap { $0 }.joined(separator: " and ")
        capng_clear(CAPNG_SELECT_BOTH)
        let flags = capng_flags_t(rawValue: CAPNG_DROP_SUPP_GRP.rawValue | CAPNG_CLEAR_BOUNDING.rawValue)
        let result = capng_change_id(identity.uid.map { Int32(bitPattern: $0) } ?? -1,
                                     identity.gid.map { Int32(bitPattern: $0) } ?? -1, flags)
        guard result == 0 else {
            let reason = getuid() == 0 ? "libcap-ng error \(result)" : "only root can change user or group"
            throw .system(SystemError("--user/--group: cannot switch to \(what) (\(reason))", errno: EPERM))
        }
        let r = vmm_clear_ambient_caps()
        guard r == 0 else { throw .system(SystemError("clear the ambient capabilities", returned: r)) }
        try verify(identity, what: what)
    }

    /// Never run on with privileges the user asked to shed.
    private static func verify(_ identity: Identity, what: String) throws(VMMError) {
        var uids: [uid_t] = [0, 0, 0]
        var gids: [gid_t] = [0, 0, 0]
        let r = vmm_get_ids(&uids, &gids)
        let uidOK = r == 0 && identity.uid.map { uid in uids.allSatisfy { $0 == uid } } ?? true
        let gidOK = r == 0 && identity.gid.map { gid in gids.allSatisfy { $0 == gid } } ?? true
        capng_get_caps_process()
        let capsOK = identity.uid == nil || identity.uid == 0
            || (capng_have_capabilities(CAPNG_SELECT_CAPS) == CAPNG_NONE
                && capng_have_capabilities(CAPNG_SELECT_BOUNDS) == CAPNG_NONE)
        guard uidOK, gidOK, capsOK, getgroups(0, nil) <= 1 else {
            throw .system(SystemError("--user/--group: privileges still held after switching to \(what)", errno: EPERM))
        }
    }
}
