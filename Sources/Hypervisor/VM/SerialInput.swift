import CVMMCore

#if canImport(Glibc)
import Glibc
#endif

/// Feeds the VMM's standard input to COM1. The UART's FIFO holds 64 bytes;
/// what does not fit waits here until the guest has read some, so a paste
/// is not cut short.
final class SerialInput {
    let fd: Int32
    private let uart: OpaquePointer
    private var pending: [UInt8] = []
    private(set) var closed = false

    init(fd: Int32, uart: OpaquePointer) {
        self.fd = fd
        self.uart = uart
    }

    /// Whether input waits for room in the FIFO (the event loop then polls).
    var hasPending: Bool { !pending.isEmpty }

    /// Called when `fd` is readable (the event loop asks only while nothing
    /// is pending; appending keeps every byte in order regardless).
    func readAvailable() {
        var buffer = [UInt8](repeating: 0, count: 256)
        let n = read(fd, &buffer, buffer.count)
        if n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN) {
            closed = true // end of input: the guest keeps running without it
            return
        }
        if n > 0 {
            pending += buffer[0..<n]
            flush()
        }
    }

    func flush() {
        guard !pending.isEmpty else { return }
        let taken = vmm_serial_receive(uart, pending, pending.count)
        pending.removeFirst(taken)
    }
}
