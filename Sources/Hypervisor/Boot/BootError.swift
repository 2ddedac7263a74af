/// Why a kernel or initramfs cannot be booted, phrased for the user.
public enum BootError: Error, Equatable, Sendable, CustomStringConvertible {
    case unreadable(option: String?, path: String, reason: String)
    case truncated(path: String)
    case notAKernel(path: String)
    case unsupportedBzImage(path: String, reason: String)
    case unsupportedELF(path: String, reason: String)
    case noPVHNote(path: String)
    case doesNotFit(what: String, path: String, needEnd: UInt64, memoryBytes: UInt64)
    case belowHighRAM(path: String, address: UInt64)

    public var description: String {
        switch self {
        case let .unreadable(option, path, reason):
            return "\(option.map { "\($0): " } ?? "")cannot read '\(path)': \(reason)"
        case let .truncated(path):
            return "'\(path)' ends early: the file is truncated or not what its headers say"
        case let .notAKernel(path):
            return "--kernel: '\(path)' is neither a PVH ELF (vmlinux with CONFIG_PVH) nor a bzImage"
        case let .unsupportedBzImage(path, reason):
            return "--kernel: bzImage '\(path)': \(reason)"
        case let .unsupportedELF(path, reason):
            return "--kernel: '\(path)': \(reason)"
        case let .noPVHNote(path):
            return "--kernel: '\(path)' has no PVH entry point (Xen ELF note 18): build the kernel with CONFIG_PVH=y"
        case let .doesNotFit(what, path, needEnd, memory):
            return "\(what) '\(path)' does not fit in guest memory: it needs --memory size=\((needEnd + (1 << 20) - 1) >> 20)M or more, not \(ByteSize.describe(memory))"
        case let .belowHighRAM(path, address):
            return "--kernel: '\(path)' loads at 0x\(String(address, radix: 16)), below 1M where the boot structures live"
        }
    }
}
