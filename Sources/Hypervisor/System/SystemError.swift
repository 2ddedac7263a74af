#if canImport(Glibc)
import Glibc
#endif

/// A failed system call, carrying what was being done so the user sees
/// "open /dev/kvm: Permission denied" rather than a bare errno.
public struct SystemError: Error, Sendable, Equatable, CustomStringConvertible {
    public let call: String
    public let errno: Int32

    public init(_ call: String, errno: Int32) {
        self.call = call
        self.errno = errno
    }

    /// From a C core return value (`-errno`).
    public init(_ call: String, returned value: Int32) {
        self.init(call, errno: -value)
    }

    public var description: String {
        "\(call): \(String(cString: strerror(errno)))\(hint.map { " (\($0))" } ?? "")"
    }

    private var hint: String? {
        switch (call, errno) {
        case ("open /dev/kvm", ENOENT): return "KVM is not available: load kvm_intel or kvm_amd, or run on a host with virtualization"
        case ("open /dev/kvm", EACCES): return "add the user to the kvm group or run as root"
        default: return nil
        }
    }
}

/// Calls a C core function that returns 0 or -errno; throws on failure.
@discardableResult
func check(_ call: @autoclosure () -> String, _ result: Int32) throws(SystemError) -> Int32 {
    guard result >= 0 else { throw SystemError(call(), returned: result) }
    return result
}
