import SystemPackage

#if canImport(Glibc)
import Glibc
#endif

/// Reads a kernel or initramfs file straight into guest memory, without an
/// intermediate copy of the whole file. Opened once per launch, so that a
/// reboot after privileges are dropped reads the same files again.
final class FileReader {
    let path: String
    private let fd: FileDescriptor
    let size: UInt64

    init(path: String, option: String) throws(BootError) {
        let opened: (fd: Int32, kind: UserPath.Kind, size: Int64)
        do {
            opened = try UserPath.open(path, flags: O_RDONLY, accept: [.regularFile])
        } catch {
            throw .unreadable(option: option, path: path, reason: error.reason)
        }
        self.path = path
        fd = FileDescriptor(rawValue: opened.fd)
        size = UInt64(opened.size)
    }

    deinit { try? fd.close() }

    /// Fills `buffer` from `offset`; a file that ends early is an error.
    func read(at offset: UInt64, into buffer: UnsafeMutableRawBufferPointer) throws(BootError) {
        var done = 0
        while done < buffer.count {
            let chunk = UnsafeMutableRawBufferPointer(rebasing: buffer[done...])
            let n: Int
            do {
                n = try fd.read(fromAbsoluteOffset: Int64(offset) + Int64(done), into: chunk, retryOnInterrupt: true)
            } catch {
                throw .unreadable(option: nil, path: path, reason: String(describing: error))
            }
            guard n > 0 else { throw .truncated(path: path) }
            done += n
        }
    }

    /// Reads `count` bytes at `offset` into a new array.
    func bytes(at offset: UInt64, count: Int) throws(BootError) -> [UInt8] {
        guard offset <= size, UInt64(count) <= size - offset else { throw .truncated(path: path) }
        var result = [UInt8](repeating: 0, count: count)
        var failure: BootError?
        result.withUnsafeMutableBytes { buffer in
            do throws(BootError) { try read(at: offset, into: buffer) } catch { failure = error }
        }
        if let failure { throw failure }
        return result
    }
}
