import CVMMCore
import Foundation
import Testing
@testable import Hypervisor

/// Runs the io guest in this process with a recording device on the PIO and
/// MMIO buses, so each access's size, address and data can be checked.
@Suite("guest accesses reach devices", .enabled(if: Host.hasKVM, Host.kvmSkipReason))
struct GuestIOTests {
    @Test("port and MMIO accesses of 1, 2 and 4 bytes arrive exactly, and reads return the device's data")
    func accessesArrive() throws {
        let vm = try VirtualMachine(kvm: try KVMDevice(), memory: MemoryConfig(sizeBytes: 16 << 20))
        try vm.createVCPUs(CPUsConfig())
        let devices = try Platform(vm: vm, serialOutput: nil)
        let pio = AccessRecorder(tag: 1, readBase: 0xa0)
        let report = AccessRecorder(tag: 2, readBase: 0)
        let mmio = AccessRecorder(tag: 3, readBase: 0xb0)
        try vm.registerPIO(base: 0x3000, length: 0x10, handler: AccessRecorder.handler, opaque: pio.opaque)
        try vm.registerPIO(base: 0x3010, length: 4, handler: AccessRecorder.handler, opaque: report.opaque)
        try vm.registerMMIO(base: 0xd000_0000, length: 0x1000, handler: AccessRecorder.handler, opaque: mmio.opaque)
        try KernelLoader(vm: vm).load(kernel: try FileReader(path: try Guests.path("io"), option: "--kernel"), initramfs: nil, cmdline: "", cpus: CPUsConfig())

        try vm.start()
        var fds = pollfd(fd: vm.stopEventFD, events: Int16(POLLIN), revents: 0)
        let ready = poll(&fds, 1, 10_000)
        vm.requestStop()
        vm.joinVCPUs()
        withExtendedLifetime(devices) {}
        #expect(ready == 1, "the guest did not power off")
        #expect(StopReason(vm.stopInfo) == .poweroff)

        typealias A = AccessRecorder.Access
        #expect(pio.accesses == [
            A(tag: 1, offset: 0, size: 1, isWrite: true, value: 0x11),
            A(tag: 1, offset: 2, size: 2, isWrite: true, value: 0x2233),
            A(tag: 1, offset: 4, size: 4, isWrite: true, value: 0x4455_6677),
            A(tag: 1, offset: 8, size: 1, isWrite: true, value: UInt64(UInt8(ascii: "P"))),
            A(tag: 1, offset: 8, size: 1, isWrite: true, value: UInt64(UInt8(ascii: "I"))),
            A(tag: 1, offset: 8, size: 1, isWrite: true, value: UInt64(UInt8(ascii: "O"))),
            A(tag: 1, offset: 8, size: 1, isWrite: true, value: UInt64(UInt8(ascii: "!"))),
            A(tag: 1, offset: 0, size: 1, isWrite: false, value: 0xa0),
            A(tag: 1, offset: 2, size: 2, isWrite: false, value: 0xa3a2),
            A(tag: 1, offset: 4, size: 4, isWrite: false, value: 0xa7a6_a5a4),
        ])
        #expect(mmio.accesses == [
            A(tag: 3, offset: 0, size: 1, isWrite: true, value: 0x88),
            A(tag: 3, offset: 2, size: 2, isWrite: true, value: 0x99aa),
            A(tag: 3, offset: 4, size: 4, isWrite: true, value: 0xbbcc_ddee),
            A(tag: 3, offset: 0, size: 1, isWrite: false, value: 0xb0),
            A(tag: 3, offset: 2, size: 2, isWrite: false, value: 0xb3b2),
            A(tag: 3, offset: 4, size: 4, isWrite: false, value: 0xb7b6_b5b4),
        ])
        // What the guest saw on its reads, echoed on the report port.
        #expect(report.accesses.map(\.value) == [0xa0, 0xa3a2, 0xa7a6_a5a4, 0xb0, 0xb3b2, 0xb7b6_b5b4])
    }
}
