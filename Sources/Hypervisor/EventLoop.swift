import CVMMCore
#if canImport(Glibc)
import Glibc
#endif

/// The VMM thread's event loop: waits for the VM's stop event, a
/// termination signal or an API request, and feeds standard input to the
/// serial port.
final class EventLoop {
    static let stopSignals: [Int32] = [SIGTERM, SIGINT, SIGHUP]

    private let epoll: OwnedDescriptor
    private let signals: OwnedDescriptor
    private var epollFD: Int32 { epoll.raw }
    /// Readable when a stop signal waits: long waits outside `next` (a
    /// migration) watch it to end early, leaving the signal for `next`.
    var signalFD: Int32 { signals.raw }

    init() throws(VMMError) {
        var mask = sigset_t()
        sigemptyset(&mask)
        for signal in Self.stopSignals { sigaddset(&mask, signal) }
        // Blocked before any vCPU thread exists, so only signalfd sees them.
        pthread_sigmask(SIG_BLOCK, &mask, nil)
        signal(SIGPIPE, SIG_IGN)
        let signalFD = signalfd(-1, &mask, Int32(SFD_CLOEXEC | SFD_NONBLOCK))
        guard signalFD >= 0 else { throw .system(SystemError("signalfd", errno: errno)) }
        signals = OwnedDescriptor(signalFD)
        let epollFD = epoll_create1(Int32(EPOLL_CLOEXEC))
        guard epollFD >= 0 else { throw .system(SystemError("epoll_create1", errno: errno)) }
        epoll = OwnedDescriptor(epollFD)
        try add(signalFD)
    }

    private func add(_ fd: Int32) throws(VMMError) {
        var event = epoll_event()
        event.events = EPOLLIN.rawValue
        event.data.fd = fd
        guard epoll_ctl(epollFD, EPOLL_CTL_ADD, fd, &event) == 0 else {
            throw .system(SystemError("epoll_ctl", errno: errno))
        }
    }

    enum Event: Equatable {
        /// A stop signal: its number.
        case signal(Int32)
        /// The VM asked to stop (power-off, reset, failure, a stop request).
        case vmStopped
        /// A request waits in the API channel.
        case api
        /// The guest ejected a hot-unplugged slot.
        case ejected
    }

    /// Blocks until something needs the VMM thread, passing `input`'s bytes
    /// to the guest meanwhile. `stopFD`: the running VM's stop event;
    /// `apiFD`: the API channel's request event; `ejectFD`: the guest's ejects.
    /// A failing epoll is an error: the VMM cannot tell what happened, and
    /// must not take it for the VM stopping.
    func next(stopFD: Int32?, input: SerialInput?, apiFD: Int32?, ejectFD: Int32? = nil) throws(VMMError) -> Event {
        var watched: [Int32] = []
        defer { for fd in watched { epoll_ctl(epollFD, EPOLL_CTL_DEL, fd, nil) } }
        var event = epoll_event()
        event.events = EPOLLIN.rawValue
        for fd in [stopFD, apiFD, ejectFD].compactMap({ $0 }) {
            event.data.fd = fd
            guard epoll_ctl(epollFD, EPOLL_CTL_ADD, fd, &event) == 0 else {
                throw .system(SystemError("epoll_ctl: watch descriptor \(fd)", errno: errno))
            }
            watched.append(fd)
        }
        // A regular file cannot be polled (EPERM): such input is left unread.
        if let input, !input.closed {
            event.data.fd = input.fd
            if epoll_ctl(epollFD, EPOLL_CTL_ADD, input.fd, &event) == 0 { watched.append(input.fd) }
        }

        var ready = [epoll_event](repeating: epoll_event(), count: 4)
        var inputArmed = true
        while true {
            // Input waiting for FIFO room is retried every 10 ms; meanwhile
            // its fd is not watched, or its readiness would spin this loop.
            if let input, watched.contains(input.fd), inputArmed == input.hasPending {
                inputArmed = !input.hasPending
                event.events = inputArmed ? EPOLLIN.rawValue : 0
                event.data.fd = input.fd
                epoll_ctl(epollFD, EPOLL_CTL_MOD, input.fd, &event)
            }
            let n = epoll_wait(epollFD, &ready, Int32(ready.count), input?.hasPending == true ? 10 : -1)
            if n < 0 {
                if errno == EINTR { continue }
                throw .system(SystemError("epoll_wait", errno: errno))
            }
            input?.flush()
            for event in ready.prefix(Int(n)) {
                if event.data.fd == signalFD {
                    var info = signalfd_siginfo()
                    if read(signalFD, &info, MemoryLayout<signalfd_siginfo>.size) == MemoryLayout<signalfd_siginfo>.size {
                        return .signal(Int32(info.ssi_signo))
                    }
                } else if event.data.fd == stopFD {
                    return .vmStopped
                } else if event.data.fd == apiFD {
                    return .api
                } else if event.data.fd == ejectFD {
                    return .ejected
                } else if let input, event.data.fd == input.fd {
                    input.readAvailable()
                    if input.closed {
                        epoll_ctl(epollFD, EPOLL_CTL_DEL, input.fd, nil)
                        watched.removeAll { $0 == input.fd }
                    }
                }
            }
        }
    }
}
