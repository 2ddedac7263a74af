import CVMMCore

#if canImport(Glibc)
import Glibc
#endif

/// `/dev/kvm`, opened and checked once per launch while the VMM may still
/// be privileged; every boot creates its VM from it.
final class KVMDevice {
    private let descriptor: OwnedDescriptor
    var fd: Int32 { descriptor.raw }

    init() throws(VMMError) {
        var error = vmm_error()
        var fd: Int32 = -1
        let result = vmm_kvm_open(&fd, &error)
        guard result == 0 else {
            let what = error.what.map { String(cString: $0) } ?? "open /dev/kvm"
            throw .system(SystemError(what, returned: result))
        }
        descriptor = OwnedDescriptor(fd)
    }
}
