#if canImport(Glibc)
import Glibc
#endif

/// A blocking HTTP/1.1 client for the API socket: what `ch-remote` and the
/// benchmarks use. One connection, kept alive across requests.
public final class APIClient {
    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    public struct Answer: Sendable {
        public let status: Int
        public let body: [UInt8]
        public var text: String { String(decoding: body, as: UTF8.self) }
    }

    private let fd: Int32
    private var pending: [UInt8] = []

    public init(socketPath: String) throws(Failure) {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        guard socketPath.utf8.count < MemoryLayout.size(ofValue: address.sun_path) else {
            throw Failure(description: "\(socketPath): too long for a UNIX socket path")
        }
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: socketPath.utf8) }
        fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw Failure(description: "socket: \(String(cString: strerror(errno)))") }
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard connected == 0 else {
            let reason = String(cString: strerror(errno))
            close(fd)
            throw Failure(description: "cannot connect to the API socket \(socketPath): \(reason) (is the VMM running with --api-socket?)")
        }
    }

    deinit { close(fd) }

    /// `endpoint` is `vm.info`, `vmm.ping`…; `fds` go with the request (SCM_RIGHTS).
    public func request(_ method: String, _ endpoint: String, body: [UInt8]? = nil, fds: [Int32] = []) throws(Failure) -> Answer {
        var head = "\(method) \(APIRoutes.root)\(endpoint) HTTP/1.1\r\nHost: localhost\r\nAccept: */*\r\n"
        if let body {
            head += "Content-Type: application/json\r\nContent-Length: \(body.count)\r\n"
        } else if method == "PUT" {
            head += "Content-Length: 0\r\n"
        }
        head += "\r\n"
        try send(Array(head.utf8) + (body ?? []), fds: fds)
        return try readAnswer()
    }

    private func send(_ bytes: [UInt8], fds: [Int32]) throws(Failure) {
        var offset = 0
        var first = true
        while offset < bytes.count {
            let n = bytes[offset...].withUnsafeBytes { data -> Int in
                var vector = iovec(iov_base: UnsafeMutableRawPointer(mutating: data.baseAddress), iov_len: data.count)
                var message = msghdr()
                return withUnsafeMutablePointer(to: &vector) { vectorPointer in
                    message.msg_iov = vectorPointer
                    message.msg_iovlen = 1
                    guard first, !fds.isEmpty else { return sendmsg(fd, &message, Int32(MSG_NOSIGNAL)) }
                    // The descriptors ride with the request's first bytes.
                    let header = MemoryLayout<cmsghdr>.size
                    var control = [UInt8](repeating: 0, count: header + fds.count * 4 + 8)
                    return control.withUnsafeMutableBytes { raw in
                        let cmsg = raw.baseAddress!.assumingMemoryBound(to: cmsghdr.self)
                        cmsg.pointee.cmsg_len = header + fds.count * 4
                        cmsg.pointee.cmsg_level = SOL_SOCKET
                        cmsg.pointee.cmsg_type = Int32(SCM_RIGHTS)
                        for (i, descriptor) in fds.enumerated() {
                            raw.storeBytes(of: descriptor, toByteOffset: header + i * 4, as: Int32.self)
                        }
                        message.msg_control = raw.baseAddress
                        message.msg_controllen = (header + fds.count * 4 + 7) & ~7
                        return sendmsg(fd, &message, Int32(MSG_NOSIGNAL))
                    }
                }
            }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { throw Failure(description: "send the request: \(String(cString: strerror(errno)))") }
            offset += n
            first = false
        }
    }

    private func readAnswer() throws(Failure) -> Answer {
        while true {
            if let answer = try Self.parse(&pending) { return answer }
            var chunk = [UInt8](repeating: 0, count: 16 * 1024)
            let n = read(fd, &chunk, chunk.count)
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { throw Failure(description: "the VMM closed the connection without an answer") }
            pending += chunk[0..<n]
        }
    }

    /// A whole answer off the front of `buffer` (a `100` skipped), or nil
    /// while more bytes are needed. Read by the rules of Cloud Hypervisor's
    /// own client (its `api_client` crate), so that this ch-remote fails
    /// wherever that one would: the head ends at the first CRLFCRLF; the
    /// status is what stands between `HTTP/1.1 ` and the first CR, a number
    /// once trimmed; the body's length is the header spelled exactly
    /// `Content-Length: `, and an answer without one ends with its head.
    static func parse(_ buffer: inout [UInt8]) throws(Failure) -> Answer? {
        guard buffer.count >= 4, let end = (0...(buffer.count - 4)).first(where: {
            buffer[$0] == 13 && buffer[$0 + 1] == 10 && buffer[$0 + 2] == 13 && buffer[$0 + 3] == 10
        }) else { return nil }
        guard let head = String(validating: buffer[..<end], as: UTF8.self) else {
            throw Failure(description: "the answer's head is not UTF-8")
        }
        let protocolPrefix = "HTTP/1.1 "
        guard head.hasPrefix(protocolPrefix) else {
            throw Failure(description: "not an HTTP/1.1 answer: \(head.unicodeScalars.prefix { $0 != "\r" })")
        }
        // By scalars: "\r\n" is one Character, which no CR compares equal to.
        let code = Substring(head.unicodeScalars.dropFirst(protocolPrefix.count).prefix { $0 != "\r" })
        guard let status = Int(code.trimmingSpaces) else {
            throw Failure(description: "the answer's status code '\(code)' is not a number")
        }
        var length: Int?
        // "\r\n" is one Character: the head's lines split on it.
        if let header = head.split(separator: "\r\n" as Character).dropFirst().first(where: { $0.hasPrefix("Content-Length: ") }) {
            let value = header.dropFirst("Content-Length: ".count).trimmingSpaces
            guard let bytes = Int(value), bytes >= 0, bytes <= HTTPRequest.maxBodyBytes * 16 else {
                throw Failure(description: "the answer's Content-Length '\(value)' is not a size")
            }
            length = bytes
        }
        let bodyStart = end + 4
        guard buffer.count >= bodyStart + (length ?? 0) else { return nil }
        let body = Array(buffer[bodyStart..<(bodyStart + (length ?? 0))])
        buffer.removeFirst(bodyStart + (length ?? 0))
        if status == 100 { return try parse(&buffer) }
        return Answer(status: status, body: body)
    }
}
