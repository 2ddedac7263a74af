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
    /// `socket=PATH`: the listening socket and the relay thread between it
    /// and the device's pipes (started once the sandbox is ready).
    private let listener: OwnedDescriptor?
    private let relay: OpaquePointer?
    private let socketPath: String?

    init(_ config: ConsoleConfig, option: String) throws(VMMError) {
        var ptyPath: String?
        var peer: Int32?
        var listener: Int32?
        var relay: OpaquePointer?
        var socketPath: String?
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
        case let .socket(path):
            let socket = try UnixSocket.listen(at: path, option: option, key: "socket").release()
            let r = vmm_console_socket_create(socket, option == "--serial" ? "serial-socket" : "console-socket", &relay)
            guard r == 0, let relay else {
                close(socket)
                unlink(path)
                throw .system(SystemError("\(option) socket=\(path): the console's relay", returned: r))
            }
            listener = socket
            socketPath = path
            fd = vmm_console_socket_output_fd(relay)
            owner = nil
        default:
            fd = -1
            owner = nil
        }
        inputFD = peer != nil ? fd : relay.map { vmm_console_socket_input_fd($0) }
        ptyPeer = peer.map { OwnedDescriptor($0) }
        self.ptyPath = ptyPath
        self.listener = listener.map { OwnedDescriptor($0) }
        self.relay = relay
        self.socketPath = socketPath
    }

    /// With `--user`/`--group` a socket console's file becomes that identity's.
    func handOver(to identity: Identity) throws(VMMError) {
        guard let socketPath else { return }
        try UnixSocket.handOver(socketPath, option: "console socket=", to: identity)
    }

    /// A socket console's relay starts under its seccomp filter.
    func start(filter: SeccompFilter?) throws(VMMError) {
        guard let relay else { return }
        let r = vmm_console_socket_start(relay, filter == nil ? nil : vmm_seccomp_thread_init, filter?.opaque)
        guard r == 0 else { throw .system(SystemError("start the console socket's thread", returned: r)) }
    }

    deinit {
        if let relay { vmm_console_socket_destroy(relay) }
        if let socketPath { unlink(socketPath) }
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
