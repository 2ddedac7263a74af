import Logging

#if canImport(Glibc)
import Glibc
#endif

/// A swift-log handler writing one line per message to a file descriptor
/// (standard error, or `--log-file`), with no buffering to lose on exit.
public struct FileLogHandler: LogHandler {
    public var logLevel: Logger.Level
    public var metadata: Logger.Metadata = [:]
    private let fd: Int32

    public init(fd: Int32, level: Logger.Level) {
        self.fd = fd
        self.logLevel = level
    }

    /// Opens `path` for appending, or uses standard error.
    public static func open(path: String?, verbosity: Int) throws(ConfigError) -> FileLogHandler {
        var fd = STDERR_FILENO
        if let path {
            do {
                fd = try UserPath.open(path, flags: O_WRONLY | O_CREAT | O_APPEND, mode: 0o640,
                                       accept: [.regularFile, .characterDevice]).fd
            } catch {
                throw .invalidValue(option: "--log-file", key: nil, value: path, reason: error.reason)
            }
        }
        return FileLogHandler(fd: fd, level: level(verbosity: verbosity))
    }

    /// Cloud Hypervisor's `-v` counting: warnings, then info, debug, trace.
    public static func level(verbosity: Int) -> Logger.Level {
        switch verbosity {
        case ...0: return .warning
        case 1: return .info
        case 2: return .debug
        default: return .trace
        }
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        let millis = Int(ts.tv_sec) * 1000 + Int(ts.tv_nsec) / 1_000_000
        var line = "cloud-hypervisor: \(millis / 1000).\(String(millis % 1000).leftPadded(to: 3)) \(event.level): \(event.message)\n"
        line.withUTF8 { bytes in
            var offset = 0
            while offset < bytes.count {
                let n = write(fd, bytes.baseAddress! + offset, bytes.count - offset)
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { return }
                offset += n
            }
        }
    }
}

extension String {
    fileprivate func leftPadded(to width: Int) -> String {
        String(repeating: "0", count: max(0, width - count)) + self
    }
}
