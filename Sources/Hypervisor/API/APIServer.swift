import CVMMCore

#if canImport(Glibc)
import Glibc
#endif

/// The API thread ("api"): accepts clients on the API socket, reads their
/// HTTP requests without ever blocking on one client, routes and checks
/// them, and hands each to the VMM thread through `APIChannel`.
///
/// Every connection is non-blocking and has bounded buffers; at the
/// connection limit the least recently active one is closed, so a client
/// that sends half a request and waits costs a slot, not the service.
final class APIServer: @unchecked Sendable {
    // @unchecked: after start() only the API thread touches the mutable
    // state below; the VMM thread calls stop(), which joins it.
    private let listener: APIListener
    private let channel: APIChannel
    private let base: VMConfig
    private let filter: SeccompFilter?
    private let stopEvent: OwnedDescriptor
    private let readyEvent: OwnedDescriptor
    private var stopFD: Int32 { stopEvent.raw }
    private var readyFD: Int32 { readyEvent.raw }
    private var thread = pthread_t()
    private var running = false
    private var startError: Int32 = 0

    private var epollFD: Int32 = -1
    private var connections: [Int32: Connection] = [:]
    private var clock: UInt64 = 0
    /// Every read lands here first: one buffer for the thread's life.
    private var chunk = [UInt8](repeating: 0, count: 16 * 1024)

    /// Clients with requests still waiting after their turn, in the order
    /// their next turns come: each serves at most `requestsPerTurn` before
    /// every other client has been heard.
    private var backlog: [Int32] = []

    static let maxConnections = 32
    static let requestsPerTurn = 8
    /// Answers queued for a client that does not read them.
    static let maxPendingOutput = 4 << 20
    static let maxFDsPerRequest = 16

    private final class Connection {
        let fd: Int32
        var input: [UInt8] = []
        var output: [UInt8] = []
        /// Descriptors that arrived with the bytes (SCM_RIGHTS).
        var fds: [Int32] = []
        var continueSent = false
        /// Close once `output` is written.
        var closing = false
        /// Dropped: its descriptor is closed and may already name another file.
        var closed = false
        var lastActive: UInt64 = 0

        init(fd: Int32) { self.fd = fd }

        func closeFDs() {
            for fd in fds { Glibc.close(fd) }
            fds.removeAll()
        }
    }

    init(listener: APIListener, channel: APIChannel, base: VMConfig, filter: SeccompFilter?) throws(VMMError) {
        self.listener = listener
        self.channel = channel
        self.base = base
        self.filter = filter
        do {
            stopEvent = try OwnedDescriptor(eventfd: "the API thread", nonBlocking: true)
            readyEvent = try OwnedDescriptor(eventfd: "the API thread", nonBlocking: false)
        } catch {
            throw .system(error)
        }
    }

    /// Starts the thread and waits until it serves (its filter installed).
    func start() throws(VMMError) {
        let context = Unmanaged.passRetained(self).toOpaque()
        let created = vmm_thread_start(&thread, { context in
            let server = Unmanaged<APIServer>.fromOpaque(context!).takeRetainedValue()
            server.serve()
            return nil
        }, context)
        guard created == 0 else {
            Unmanaged<APIServer>.fromOpaque(context).release()
            throw .system(SystemError("start the API thread", returned: created))
        }
        running = true
        var result: UInt64 = 0
        while read(readyFD, &result, 8) < 0 && errno == EINTR {}
        if startError != 0 {
            pthread_join(thread, nil)
            running = false
            throw .system(SystemError("start the API thread", returned: startError))
        }
    }

    /// VMM thread: answers what is pending, then ends and joins the thread.
    func stop() {
        channel.close()
        guard running else { return }
        var one: UInt64 = 1
        _ = write(stopFD, &one, 8)
        pthread_join(thread, nil)
        running = false
    }

    // MARK: The API thread

    private func ready(_ error: Int32) {
        startError = error
        var value: UInt64 = 1
        _ = write(readyFD, &value, 8)
    }

    private func serve() {
        _ = vmm_name_thread("api")
        if let filter {
            do {
                try filter.install()
            } catch {
                return ready(-EPERM)
            }
        }
        epollFD = epoll_create1(Int32(EPOLL_CLOEXEC))
        guard epollFD >= 0 else { return ready(-errno) }
        defer {
            for connection in connections.values { drop(connection) }
            close(epollFD)
        }
        guard watch(listener.fd, events: EPOLLIN.rawValue), watch(stopFD, events: EPOLLIN.rawValue) else { return ready(-errno) }
        ready(0)

        var events = [epoll_event](repeating: epoll_event(), count: 16)
        while true {
            // Clients still owed a turn: look for new events without waiting.
            let n = epoll_wait(epollFD, &events, Int32(events.count), backlog.isEmpty ? -1 : 0)
            if n < 0 {
                if errno == EINTR { continue }
                return
            }
            for event in events.prefix(Int(n)) {
                let fd = event.data.fd
                if fd == stopFD {
                    // Answers already made go out if the socket takes them now.
                    for connection in connections.values { flush(connection) }
                    return
                } else if fd == listener.fd {
                    acceptClients()
                } else if let connection = connections[fd] {
                    if event.events & EPOLLOUT.rawValue != 0 { flush(connection) }
                    // A backlogged client waits for its turn below.
                    if connections[fd] != nil, !backlog.contains(fd),
                       event.events & (EPOLLIN.rawValue | EPOLLHUP.rawValue | EPOLLERR.rawValue) != 0 {
                        serveTurn(connection)
                    }
                }
            }
            let waiting = backlog
            backlog.removeAll()
            for fd in waiting {
                if let connection = connections[fd] { serveTurn(connection) }
            }
        }
    }

    private func watch(_ fd: Int32, events: UInt32, modify: Bool = false) -> Bool {
        var event = epoll_event()
        event.events = events
        event.data.fd = fd
        return epoll_ctl(epollFD, modify ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, fd, &event) == 0
    }

    private func acceptClients() {
        while true {
            let fd = vmm_accept_client(listener.fd)
            if fd < 0 {
                if fd == -EINTR || fd == -ECONNABORTED { continue }
                return
            }
            if connections.count >= Self.maxConnections,
               let idlest = connections.values.min(by: { $0.lastActive < $1.lastActive }) {
                drop(idlest)
            }
            let connection = Connection(fd: fd)
            clock += 1
            connection.lastActive = clock
            guard watch(fd, events: EPOLLIN.rawValue | EPOLLRDHUP.rawValue) else {
                close(fd)
                continue
            }
            connections[fd] = connection
        }
    }

    private func drop(_ connection: Connection) {
        guard !connection.closed else { return }
        connection.closed = true
        connection.closing = true
        epoll_ctl(epollFD, EPOLL_CTL_DEL, connection.fd, nil)
        close(connection.fd)
        connection.closeFDs()
        connections[connection.fd] = nil
    }

    /// One turn of a client: its requests served one by one, reading only
    /// as much as they need, at most `requestsPerTurn`; one with more
    /// waiting goes to the back of the backlog, so that one client
    /// pipelining thousands of requests delays another's by a few only.
    private func serveTurn(_ connection: Connection) {
        clock += 1
        connection.lastActive = clock
        var served = 0
        while !connection.closing {
            if serveOne(connection) {
                served += 1
                if served == Self.requestsPerTurn {
                    if !connection.closing { backlog.append(connection.fd) }
                    return
                }
                continue
            }
            var truncated = false
            let n = Self.receive(connection.fd, into: &chunk, fds: &connection.fds, truncated: &truncated)
            if n > 0 {
                connection.input += chunk[0..<n]
                if truncated || connection.fds.count > Self.maxFDsPerRequest {
                    connection.closeFDs()
                    refuse(connection, .error(400, "more than \(Self.maxFDsPerRequest) descriptors sent with one request"))
                }
                continue
            }
            if n < 0 && errno == EINTR { continue }
            if n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) { break }
            // The client closed (or the socket failed): what it sent is served,
            // nothing more will come.
            drop(connection)
            return
        }
        if connection.closing && connection.output.isEmpty { drop(connection) }
    }

    /// Serves the first whole request in the connection's input; false
    /// when more bytes are needed first.
    private func serveOne(_ connection: Connection) -> Bool {
        switch HTTPRequest.parse(connection.input) {
        case .incomplete(let headersDone, let expectsContinue):
            if headersDone && expectsContinue && !connection.continueSent {
                connection.continueSent = true
                connection.output += HTTPResponse(status: 100).serialized()
                flush(connection)
            }
            return false
        case .failed(let status, let reason):
            refuse(connection, .error(status, reason))
        case .complete(let request, let consumed):
            connection.input.removeFirst(consumed)
            connection.continueSent = false
            var response = handle(request, connection: connection)
            connection.closeFDs()
            if !request.keepAlive { response.close = true }
            send(response, on: connection)
        }
        return true
    }

    private func handle(_ request: HTTPRequest, connection: Connection) -> HTTPResponse {
        switch APIRoutes.route(request, base: base, fds: connection.fds) {
        case .failure(let response): return response
        case .success(let apiRequest):
            // Handed over: the VMM thread keeps or closes them.
            if !apiRequest.descriptors.isEmpty { connection.fds.removeAll() }
            return HTTPResponse(channel.call(apiRequest))
        }
    }

    /// Answers and closes: the rest of what the client sent cannot be framed.
    private func refuse(_ connection: Connection, _ response: HTTPResponse) {
        var response = response
        response.close = true
        connection.input.removeAll()
        send(response, on: connection)
    }

    private func send(_ response: HTTPResponse, on connection: Connection) {
        connection.output += response.serialized()
        if response.close { connection.closing = true }
        flush(connection)
    }

    private func flush(_ connection: Connection) {
        guard !connection.closed else { return }
        while !connection.output.isEmpty {
            let n = connection.output.withUnsafeBytes { Glibc.send(connection.fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n > 0 {
                connection.output.removeFirst(n)
                continue
            }
            if n < 0 && errno == EINTR { continue }
            if n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) && connection.output.count <= Self.maxPendingOutput {
                _ = watch(connection.fd, events: EPOLLIN.rawValue | EPOLLOUT.rawValue | EPOLLRDHUP.rawValue, modify: true)
                return
            }
            drop(connection)
            return
        }
        _ = watch(connection.fd, events: EPOLLIN.rawValue | EPOLLRDHUP.rawValue, modify: true)
        if connection.closing { drop(connection) }
    }

    /// recvmsg with room for descriptors (SCM_RIGHTS), which are appended
    /// to `fds` close-on-exec.
    private static func receive(_ fd: Int32, into buffer: inout [UInt8], fds: inout [Int32], truncated: inout Bool) -> Int {
        let headerSize = MemoryLayout<cmsghdr>.size
        let controlSize = headerSize + maxFDsPerRequest * MemoryLayout<Int32>.size
        var control = [UInt8](repeating: 0, count: controlSize)
        let count = buffer.withUnsafeMutableBytes { data in
            control.withUnsafeMutableBytes { controlBytes in
                var vector = iovec(iov_base: data.baseAddress, iov_len: data.count)
                return withUnsafeMutablePointer(to: &vector) { vectorPointer in
                    var message = msghdr()
                    message.msg_iov = vectorPointer
                    message.msg_iovlen = 1
                    message.msg_control = controlBytes.baseAddress
                    message.msg_controllen = controlBytes.count
                    let n = recvmsg(fd, &message, Int32(MSG_CMSG_CLOEXEC))
                    guard n >= 0 else { return n }
                    // More descriptors than room: the kernel closed the rest.
                    truncated = message.msg_flags & Int32(MSG_CTRUNC) != 0
                    // One control message is all a client sends with a request.
                    if message.msg_controllen >= headerSize {
                        let header = controlBytes.load(as: cmsghdr.self)
                        if header.cmsg_level == SOL_SOCKET, header.cmsg_type == Int32(SCM_RIGHTS),
                           header.cmsg_len >= headerSize, header.cmsg_len <= controlBytes.count {
                            let received = (Int(header.cmsg_len) - headerSize) / MemoryLayout<Int32>.size
                            for i in 0..<received {
                                fds.append(controlBytes.load(fromByteOffset: headerSize + i * 4, as: Int32.self))
                            }
                        }
                    }
                    return n
                }
            }
        }
        return count
    }
}
