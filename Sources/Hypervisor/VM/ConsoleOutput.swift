import CVMMCore

#if canImport(Glibc)
import Glibc
#endif

/// Where a console's bytes go (and, for a pty, come from), opened once per
/// launch so that a guest reboot keeps the same file or terminal.
final class ConsoleOutput {
    /// -1 for a device whose output is discarded.
    let fd: Int32
    /// Where the guest's input comes from besides standard input: a pty's
    /// main side. nil for the other modes.
    let inputFD: Int32?
    /// `pty`: the terminal a user opens (`screen /dev/pts/3`), as vm.info gives it.
    let ptyPath: String?
    /// A file's or a pty main's descriptor is the console's; standard output is not.
    private let owner: OwnedDescriptor?
    /// A pty's other side, held open so that clients can come and go
    /// without the main side seeing a hang-up.
    private let ptyPeer: OwnedDescriptor?

    init(_ config: ConsoleConfig, option: String) throws(VMMError) {
        var ptyPath: String?
        var peer: Int32?
        switch config {
        case .tty:
            fd = STDOUT_FILENO
            owner = nil
        case let .file(path):
            do {
                fd = try UserPath.open(path, flags: O_WRONLY | O_CREAT | O_TRUNC, mode: 0o640,
                                       accept: [.regularFile, .characterDevice]).fd
            } catch {
                throw .config(.invalidValue(option: option, key: "file", value: path, reason: error.reason))
            }
            owner = OwnedDescriptor(fd)
        case .pty:
            let opened = try Self.openPty(option: option)
            fd = opened.main
            owner = OwnedDescriptor(opened.main)
            peer = opened.peer
            ptyPath = opened.path
        default:
            fd = -1
            owner = nil
        }
        inputFD = peer == nil ? nil : fd
        ptyPeer = peer.map { OwnedDescriptor($0) }
        self.ptyPath = ptyPath
    }

    /// A new pty: its main side non-blocking (a full terminal drops the
    /// guest's output rather than stopping a vCPU), its other side raw, as
    /// Cloud Hypervisor sets it.
    private static func openPty(option: String) throws(VMMError) -> (main: Int32, peer: Int32, path: String) {
        var main: Int32 = -1, peer: Int32 = -1
        var name = [CChar](repeating: 0, count: 64)
        let r = vmm_open_pty(&main, &peer, &name, name.count)
        guard r == 0 else { throw .system(SystemError("\(option) pty: open a pseudo-terminal", returned: r)) }
        return (main, peer, String(decoding: name.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
    }
}
