import CVMMCore

#if canImport(Glibc)
import Glibc
#endif

/// Puts a terminal on standard input in raw mode while the guest owns the
/// console (its keys, ^C included, go to the guest) and restores it.
final class RawTerminal {
    private let fd: Int32
    private var saved = termios()

    /// nil when `fd` is not a terminal.
    init?(fd: Int32) {
        guard isatty(fd) == 1, tcgetattr(fd, &saved) == 0 else { return nil }
        self.fd = fd
        var raw = saved
        cfmakeraw(&raw)
        // Keep output processing so that the host's newlines still return the carriage.
        raw.c_oflag |= tcflag_t(OPOST)
        tcsetattr(fd, TCSANOW, &raw)
        // A seccomp kill ends the VMM in its SIGSYS handler: that restores it too.
        vmm_seccomp_trap_terminal(fd, &saved)
    }

    deinit {
        vmm_seccomp_trap_terminal(-1, nil)
        restore()
    }

    func restore() {
        var original = saved
        tcsetattr(fd, TCSANOW, &original)
    }
}
