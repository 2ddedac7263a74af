
/// One HTTP/1.x request as the API reads it off its socket: what Cloud
/// Hypervisor's clients send (curl, ch-remote, Kata's Go client): a
/// request line, headers, and a body sized by Content-Length.
public struct HTTPRequest: Sendable, Equatable {
    public var method: String
    /// The path, without a query string.
    public var path: String
    public var body: [UInt8]
    /// Whether the connection stays open after the answer.
    public var keepAlive: Bool
    /// `Expect: 100-continue`: the client waits for a go-ahead before its body.
    public var expectsContinue: Bool

    /// Bytes a request's line and headers may take.
    public static let maxHeaderBytes = 16 * 1024
    /// A VmConfig with every device is a few KiB; Kata's are under 8.
    public static let maxBodyBytes = 1 << 20

    public enum Parse: Equatable {
        /// More bytes are needed. `headersDone`: the head is complete and a
        /// client that asked may be told to send the body.
        case incomplete(headersDone: Bool, expectsContinue: Bool)
        /// A whole request, and how many bytes of the buffer it took.
        case complete(HTTPRequest, consumed: Int)
        /// Not a request this server takes: the status to answer, and why.
        case failed(status: Int, reason: String)
    }

    /// Parses the first request in `buffer`.
    public static func parse(_ buffer: [UInt8]) -> Parse {
        guard let headEnd = Self.headEnd(buffer) else {
            if buffer.count > maxHeaderBytes { return .failed(status: 431, reason: "request headers longer than \(maxHeaderBytes) bytes") }
            return .incomplete(headersDone: false, expectsContinue: false)
        }
        guard headEnd <= maxHeaderBytes else { return .failed(status: 431, reason: "request headers longer than \(maxHeaderBytes) bytes") }
        guard let head = String(validating: buffer[..<headEnd], as: UTF8.self) else {
            return .failed(status: 400, reason: "request head is not UTF-8")
        }
        var lines = head.split(separator: "\r\n", omittingEmptySubsequences: false)
        while lines.last?.isEmpty == true { lines.removeLast() }
        guard let requestLine = lines.first else { return .failed(status: 400, reason: "empty request") }
        let parts = requestLine.split(separator: " ", omittingEmptySubsequences: false)
        guard parts.count == 3, !parts[0].isEmpty, parts[1].hasPrefix("/") else {
            return .failed(status: 400, reason: "malformed request line (expected METHOD /path HTTP/1.1)")
        }
        let version = parts[2]
        guard version == "HTTP/1.1" || version == "HTTP/1.0" else {
            return .failed(status: 505, reason: "HTTP version \(version) (HTTP/1.1 and 1.0 are served)")
        }
        var keepAlive = version == "HTTP/1.1"
        var contentLength = 0
        var sawLength = false
        var expectsContinue = false
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: ":"), colon != line.startIndex else {
                return .failed(status: 400, reason: "malformed header line")
            }
            let name = line[..<colon].lowercased()
            let value = String(line[line.index(after: colon)...].trimmingSpaces)
            switch name {
            case "content-length":
                guard let length = Int(value), length >= 0, !sawLength || length == contentLength else {
                    return .failed(status: 400, reason: "invalid Content-Length '\(value)'")
                }
                guard length <= maxBodyBytes else {
                    return .failed(status: 413, reason: "body of \(length) bytes (at most \(maxBodyBytes))")
                }
                contentLength = length
                sawLength = true
            case "transfer-encoding":
                return .failed(status: 501, reason: "Transfer-Encoding \(value) (send the body with Content-Length)")
            case "connection":
                let tokens = value.lowercased().split(separator: ",").map { String($0.trimmingSpaces) }
                if tokens.contains("close") { keepAlive = false }
                if tokens.contains("keep-alive") { keepAlive = true }
            case "expect":
                guard value.lowercased() == "100-continue" else {
                    return .failed(status: 417, reason: "Expect: \(value)")
                }
                expectsContinue = true
            default:
                break
            }
        }
        let bodyStart = headEnd + 4
        guard buffer.count - bodyStart >= contentLength else {
            return .incomplete(headersDone: true, expectsContinue: expectsContinue)
        }
        var path = String(parts[1])
        if let query = path.firstIndex(of: "?") { path = String(path[..<query]) }
        let request = HTTPRequest(method: String(parts[0]), path: path,
                                  body: Array(buffer[bodyStart..<(bodyStart + contentLength)]),
                                  keepAlive: keepAlive, expectsContinue: expectsContinue)
        return .complete(request, consumed: bodyStart + contentLength)
    }

    /// Index of the blank line's CRLFCRLF ending the head, if there is one.
    private static func headEnd(_ buffer: [UInt8]) -> Int? {
        guard buffer.count >= 4 else { return nil }
        for i in 0...(buffer.count - 4) where buffer[i] == 13 && buffer[i + 1] == 10 && buffer[i + 2] == 13 && buffer[i + 3] == 10 {
            return i
        }
        return nil
    }
}

/// An answer: the status, and a JSON body or none (204).
/// An error too: a request refused is answered with one.
public struct HTTPResponse: Error, Sendable, Equatable {
    public var status: Int
    public var body: [UInt8]?
    /// The server closes the connection after this answer.
    public var close = false

    public init(status: Int, body: [UInt8]? = nil) {
        self.status = status
        self.body = body
    }

    /// Cloud Hypervisor's error body: a JSON array of messages, outermost first.
    public static func error(_ status: Int, _ message: String) -> HTTPResponse {
        HTTPResponse(status: status, body: JSONValue.array([.string(message)]).serialized)
    }

    public static let noContent = HTTPResponse(status: 204)

    /// The bytes on the wire, as Cloud Hypervisor's server (micro_http)
    /// writes them: the status code and a space with no reason phrase
    /// (RFC 9112 allows it, and Cloud Hypervisor's own ch-remote reads
    /// everything up to the CR as the number), keep-alive said, and
    /// Content-Type and Content-Length (spelled as that client looks them
    /// up) on every answer but 100 and 204.
    public func serialized() -> [UInt8] {
        var head = "HTTP/1.1 \(status) \r\nServer: Cloud Hypervisor API\r\n"
        head += close ? "Connection: close\r\n" : "Connection: keep-alive\r\n"
        if status != 100 && status != 204 {
            head += "Content-Type: application/json\r\nContent-Length: \((body ?? []).count)\r\n"
        }
        head += "\r\n"
        return Array(head.utf8) + (body ?? [])
    }
}
