import CVMMCore

#if canImport(Glibc)
import Glibc
#endif

/// One migration connection (vmm_migration.h's messages), either end.
/// Every wait is bounded: by the peer going quiet for `idleMs`, by the
/// migration's deadline, and by `abort` descriptors (the guest stopping,
/// a stop signal).
final class MigrationChannel {
    private let socket: OwnedDescriptor
    var io: vmm_mig_channel
    /// Names the far end in errors: "the destination", "the source".
    let peer: String

    init(socket: consuming OwnedDescriptor, peer: String, abort: [Int32], idleMs: Int32) {
        self.peer = peer
        let fd = socket.raw
        self.socket = socket
        io = vmm_mig_channel(fd: fd, abort: (abort.count > 0 ? abort[0] : -1, abort.count > 1 ? abort[1] : -1),
                             deadline_ms: 0, idle_ms: idleMs)
    }

    /// A transfer's failure, in words for the user. A destination that
    /// closed the connection said why first: that answer is the error.
    func failure(_ result: Int32, _ what: String) -> VMMError {
        if result == -EPIPE, peer == "the destination", let refusal = pendingRefusal() {
            return .system(SystemError("migration: \(what): the destination refused: \(refusal)", errno: EREMOTEIO))
        }
        let reason = switch -result {
        case ECANCELED: "stopped: the guest stopped or the VMM was told to stop"
        case ETIMEDOUT: io.deadline_ms != 0 && vmm_mig_now_ms() >= io.deadline_ms
            ? "the migration's timeout_s passed" : "\(peer) stopped answering"
        case EPIPE: "\(peer) closed the connection"
        case EPROTO: "\(peer) sent something that is not this VMM's migration stream"
        default: String(cString: strerror(-result))
        }
        return .system(SystemError("migration: \(what): \(reason)", errno: -result))
    }

    func send(_ kind: vmm_mig_kind, _ payload: [UInt8] = [], _ what: String) throws(VMMError) {
        let r = payload.withUnsafeBytes { vmm_mig_write_message(&io, kind.rawValue, $0.baseAddress, UInt64($0.count)) }
        guard r == 0 else { throw failure(r, what) }
    }

    func header(_ what: String) throws(VMMError) -> vmm_mig_header {
        var header = vmm_mig_header()
        let r = vmm_mig_read_header(&io, &header)
        guard r == 0 else { throw failure(r, what) }
        return header
    }

    /// A message's payload, refused past `limit` bytes before any is read.
    func payload(of header: vmm_mig_header, limit: Int, _ what: String) throws(VMMError) -> [UInt8] {
        guard header.length <= UInt64(limit) else { throw failure(-EPROTO, what) }
        var bytes = [UInt8](repeating: 0, count: Int(header.length))
        let r = bytes.withUnsafeMutableBytes { vmm_mig_read(&io, $0.baseAddress, $0.count) }
        guard r == 0 else { throw failure(r, what) }
        return bytes
    }

    /// The destination's answer to a step; its refusal is the error.
    func awaitReply(_ what: String) throws(VMMError) {
        switch Self.readReply(&io) {
        case .failure(let error): throw failure(error.result, what)
        case .success(let refusal?):
            throw .system(SystemError("migration: \(what): the destination refused: \(refusal)", errno: EREMOTEIO))
        case .success(nil): return
        }
    }

    /// A refusal already waiting, read within half a second.
    private func pendingRefusal() -> String? {
        var quick = io
        quick.idle_ms = 500
        quick.deadline_ms = 0
        guard case .success(let refusal?) = Self.readReply(&quick) else { return nil }
        return refusal
    }

    /// One REPLY: nil for done, the destination's words for a refusal, or
    /// the transfer's negative errno.
    private static func readReply(_ io: inout vmm_mig_channel) -> Result<String?, ReplyFailure> {
        var header = vmm_mig_header()
        var r = vmm_mig_read_header(&io, &header)
        guard r == 0 else { return .failure(ReplyFailure(r)) }
        guard header.kind == VMM_MIG_REPLY.rawValue, header.length >= 4, header.length <= 64 << 10 else { return .failure(ReplyFailure(-EPROTO)) }
        var body = [UInt8](repeating: 0, count: Int(header.length))
        r = body.withUnsafeMutableBytes { vmm_mig_read(&io, $0.baseAddress, $0.count) }
        guard r == 0 else { return .failure(ReplyFailure(r)) }
        let status = body.withUnsafeBytes { $0.loadUnaligned(as: UInt32.self) }
        return .success(status == 0 ? nil : String(decoding: body.dropFirst(4), as: UTF8.self))
    }

    private struct ReplyFailure: Error {
        let result: Int32
        init(_ result: Int32) { self.result = result }
    }

    /// The destination's answer: done, or why not (`error`).
    func reply(_ error: String? = nil) throws(VMMError) {
        var body = [UInt8](repeating: 0, count: 4)
        if let error {
            body[0] = 1
            body += Array(error.utf8.prefix(4096))
        }
        try send(VMM_MIG_REPLY, body, "answer the source")
    }
}
