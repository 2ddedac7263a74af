import CVMMCore
import CVMMTestHooks
import Foundation
@testable import Hypervisor
import Testing

/// Parking the vCPUs for a device change is not a pause: the guest's
/// clock runs on through the one, and is held through the other.
@Suite("quiesce and pause", .enabled(if: Host.hasKVM, Host.kvmSkipReason))
struct QuiesceTests {
    func clock(_ vm: VirtualMachine) throws -> UInt64 {
        var ns: UInt64 = 0
        try #require(vmm_test_kvm_clock(vmm_vm_fd(vm.handle), &ns) == 0)
        return ns
    }

    @Test("twenty quiesces of 20 ms leave the guest's clock with the host's; a pause holds it")
    func clockAcrossQuiesces() throws {
        let vm = try VirtualMachine(kvm: try KVMDevice(), memory: MemoryConfig(sizeBytes: 16 << 20))
        let host = DispatchTime.now().uptimeNanoseconds
        var guest = try clock(vm)
        for _ in 0..<20 {
            #expect(vmm_vcpus_quiesce(vm.handle) == 0)
            usleep(20_000)
            vmm_vcpus_release(vm.handle)
        }
        let hostPassed = Int64(DispatchTime.now().uptimeNanoseconds - host)
        let guestPassed = Int64(try clock(vm) - guest)
        #expect(abs(hostPassed - guestPassed) < 50_000_000, "host \(hostPassed) ns, guest \(guestPassed) ns")

        guest = try clock(vm)
        #expect(vmm_vm_pause(vm.handle) == 0)
        usleep(200_000)
        #expect(vmm_vm_resume(vm.handle) == 0)
        let held = Int64(try clock(vm) - guest)
        #expect(held < 100_000_000, "the guest saw \(held) ns of a 200 ms pause")
    }
}
