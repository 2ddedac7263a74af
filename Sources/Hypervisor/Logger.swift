#if canImport(Glibc)
import Glibc
#endif

/// The VMM's log: one line per message to a file descriptor (standard
/// error, or `--log-file`), with no buffering to lose on exit, at Cloud
/// Hypervisor's `-v` levels.
///
/// Not swift-log: its 1.16 line keeps a task-local logger, which links the
/// Swift Concurrency runtime and libdispatch into the binary; their
/// relocated tables and start-up cost every VM 120 KiB (bench/memory.py,
/// 1.32 -> 1.20 MiB per VM), for a facade this VMM uses with one handler.
public struct Logger: Sendable {
    public enum Level: Int, Sendable, Comparable, CustomStringConvertible {
        case trace, debug, info, warning, error

        public static func < (a: Level, b: Level) -> Bool { a.rawValue < b.rawValue }

        public var description: String {
            switch self {
            case .trace: "trace"
            case .debug: "debug"
            case .info: "info"
            case .warning: "warning"
            case .error: "error"
            }
        }
    }

    /// The least severe level written.
    public let level: Level
    private let fd: Int32

    /// Warnings and errors to standard error, as Cloud Hypervisor without `-v`.
    public init(fd: Int32 = STDERR_FILENO, level: Level = .warning) {
        self.fd = fd
        self.level = level
    }

    /// Opens `path` for appending, or uses standard error.
    public static func open(path: String?, verbosity: Int) throws(ConfigError) -> Logger {
        var fd = STDERR_FILENO
        if let path {
            do {
                fd = try UserPath.open(path, flags: O_WRONLY | O_CREAT | O_APPEND, mode: 0o640,
                                       accept: [.regularFile, .characterDevice]).fd
            } catch {
                throw .invalidValue(option: "--log-file", key: nil, value: path, reason: error.reason)
            }
        }
        return Logger(fd: fd, level: level(verbosity: verbosity))
    }

    /// Cloud Hypervisor's `-v` counting: warnings, then info, debug, trace.
    public static func level(verbosity: Int) -> Level {
        switch verbosity {
        case ...0: return .warning
        case 1: return .info
        case 2: return .debug
        default: return .trace
        }
    }

    public func info(_ message: @autoclosure () -> String) { log(.info, message) }
    public func warning(_ message: @autoclosure () -> String) { log(.warning, message) }
    public func error(_ message: @autoclosure () -> String) { log(.error, message) }

    private func log(_ severity: Level, _ message: () -> String) {
        guard severity >= level else { return }
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        let millis = Int(ts.tv_sec) * 1000 + Int(ts.tv_nsec) / 1_000_000
        var line = "cloud-hypervisor: \(millis / 1000).\(String(millis % 1000).leftPadded(to: 3)) \(severity): \(message())\n"
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
