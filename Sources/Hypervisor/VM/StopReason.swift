import CVMMCore

#if canImport(Glibc)
import Glibc
#endif

/// How one boot of the guest ended.
public enum StopReason: Equatable, Sendable {
    case poweroff
    case reset
    /// The VMM was told to stop (a signal).
    case signal(Int32)
    /// The VMM stopped it (`vmm.shutdown`, `vm.shutdown`).
    case requested
    /// The VM went to another VMM (send-migration).
    case migrated
    /// The guest or KVM failed; the message says how.
    case failure(String)

    init(_ info: vmm_stop_info) {
        let vcpu = info.vcpu >= 0 ? "vCPU \(info.vcpu)" : "a vCPU"
        let errnoText = { String(cString: strerror(Int32(truncatingIfNeeded: info.detail))) }
        switch info.reason {
        case VMM_STOP_POWEROFF: self = .poweroff
        case VMM_STOP_RESET: self = .reset
        case VMM_STOP_REQUESTED: self = .requested
        case VMM_STOP_TRIPLE_FAULT:
            self = .failure("the guest triple-faulted on \(vcpu) (KVM_EXIT_SHUTDOWN); its registers are above")
        case VMM_STOP_FAIL_ENTRY:
            self = .failure("KVM could not enter \(vcpu) (hardware entry failure reason 0x\(String(info.detail, radix: 16)))")
        case VMM_STOP_INTERNAL_ERROR:
            let kind = info.detail == 1 ? " (instruction emulation failed)" : ""
            self = .failure("KVM internal error \(info.detail)\(kind) on \(vcpu); its registers are above")
        case VMM_STOP_HALTED:
            self = .failure("\(vcpu) halted with nothing able to wake it")
        case VMM_STOP_UNKNOWN_EXIT:
            self = .failure("unhandled KVM exit reason \(info.detail) on \(vcpu); its registers are above")
        case VMM_STOP_RUN_ERROR:
            self = .failure("KVM_RUN failed on \(vcpu): \(errnoText())")
        case VMM_STOP_GUEST_PANIC:
            self = .failure("the guest kernel panicked (it said so through pvpanic); its console above shows why")
        case VMM_STOP_VCPU_SETUP:
            self = .failure("\(vcpu) could not be set up: \(errnoText())")
        default:
            self = .failure("the VM stopped for no recorded reason")
        }
    }
}
