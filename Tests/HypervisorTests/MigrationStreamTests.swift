import CVMMCore
import Foundation
import Testing

@testable import Hypervisor

/// The migration stream's pieces against a peer that lies: what a hostile
/// or broken source sends is an error value, never a write outside RAM.
@Suite("Migration stream")
struct MigrationStreamTests {
    private func pair() -> (Int32, Int32) {
        var fds: [Int32] = [-1, -1]
        _ = socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &fds)
        return (fds[0], fds[1])
    }

    private func channel(_ fd: Int32) -> vmm_mig_channel {
        vmm_mig_channel(fd: fd, abort: (-1, -1), deadline_ms: 0, idle_ms: 2000)
    }

    @Test("Descriptors go sixteen to a message, arrive open and in order; more than that in one message is refused")
    func descriptors() throws {
        let (a, b) = pair()
        defer { close(a); close(b) }
        var sender = channel(a), receiver = channel(b)
        let sent = (0..<20).map { _ in open("/dev/null", O_RDONLY | O_CLOEXEC) }
        defer { sent.forEach { close($0) } }
        #expect(vmm_mig_send_fds(&sender, sent, 17) == -EINVAL)
        #expect(vmm_mig_send_fds(&sender, Array(sent[0..<16]), 16) == 0)
        #expect(vmm_mig_send_fds(&sender, Array(sent[16...]), 4) == 0)
        var first = [Int32](repeating: -1, count: 16), second = [Int32](repeating: -1, count: 16)
        #expect(vmm_mig_receive_fds(&receiver, &first, 16) == 16)
        #expect(vmm_mig_receive_fds(&receiver, &second, 16) == 4)
        let got = first + second.prefix(4)
        for (mine, theirs) in zip(sent, got) {
            var a = stat(), b = stat()
            #expect(fstat(mine, &a) == 0 && fstat(theirs, &b) == 0 && a.st_ino == b.st_ino)
            close(theirs)
        }
    }

    @Test("RAM runs outside guest RAM, past their message, unaligned or empty are refused; a good one lands in place",
          .enabled(if: Host.hasKVM, Host.kvmSkipReason))
    func ramRuns() throws {
        let vm = try VirtualMachine(kvm: try KVMDevice(), memory: MemoryConfig(sizeBytes: 16 << 20))
        func receive(_ runs: [(gpa: UInt64, len: UInt64)], data: UInt8 = 0x5a, declared: UInt64? = nil) -> Int32 {
            let (a, b) = pair()
            defer { close(a); close(b) }
            var bytes: [UInt8] = []
            for run in runs {
                withUnsafeBytes(of: run.gpa.littleEndian) { bytes += $0 }
                withUnsafeBytes(of: run.len.littleEndian) { bytes += $0 }
                bytes += [UInt8](repeating: data, count: Int(min(run.len, 1 << 16)))
            }
            _ = bytes.withUnsafeBytes { send(a, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
            shutdown(a, Int32(SHUT_WR))
            var receiver = channel(b)
            return vmm_mig_receive_ram(vm.handle, &receiver, declared ?? UInt64(bytes.count))
        }
        #expect(receive([(0x1000, 4096)]) == 0)
        #expect(vm.memory(at: 0x1000, count: 4096)?.allSatisfy { $0 == 0x5a } == true, "the page did not land")
        #expect(receive([(16 << 20, 4096)]) == -EPROTO, "a run past RAM")
        #expect(receive([(UInt64.max - 4095, 4096)]) == -EPROTO, "a run that wraps")
        #expect(receive([(0x1001, 4096)]) == -EPROTO, "an unaligned run")
        #expect(receive([(0x2000, 0)]) == -EPROTO, "an empty run")
        #expect(receive([(0x2000, 8192)], declared: 16 + 4096) == -EPROTO, "a run longer than its message")
        #expect(receive([(0x3000, 4096)], declared: 16 + 8192) == -EPIPE, "a message the source never finished")
    }
}
