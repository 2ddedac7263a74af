#if canImport(Glibc)
import Glibc
#endif

/// The fd a console writes to, opened once per launch so that a guest
/// reboot keeps appending to the same file.
final class ConsoleOutput {
    /// -1 for a device whose output is discarded.
    let fd: Int32
    /// A file's descriptor is the console's; standard output is not.
    private let owner: OwnedDescriptor?

    init(_ config: ConsoleConfig, option: String) throws(VMMError) {
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
        default:
            fd = -1
            owner = nil
        }
    }
}
