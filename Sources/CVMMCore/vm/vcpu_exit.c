/* One handler per KVM exit reason; each short. */
#include "vm/vmm_bus.h"
#include "vm/vm_internal.h"

static void exit_pio(struct vmm_vcpu *vcpu)
{
    struct kvm_run *run = vcpu->run;
    uint8_t *data = (uint8_t *)run + run->io.data_offset;
    bool is_write = run->io.direction == KVM_EXIT_IO_OUT;
    /* A string instruction (rep ins/outs) arrives as `count` accesses. */
    for (uint32_t i = 0; i < run->io.count; i++, data += run->io.size)
        vmm_bus_dispatch(vcpu->vm->pio, run->io.port, data, run->io.size, is_write);
}

static void exit_mmio(struct vmm_vcpu *vcpu)
{
    struct kvm_run *run = vcpu->run;
    vmm_bus_dispatch(vcpu->vm->mmio, run->mmio.phys_addr, run->mmio.data,
                     run->mmio.len, run->mmio.is_write);
}

static bool exit_fatal(struct vmm_vcpu *vcpu, enum vmm_stop_reason reason, uint64_t detail)
{
    vmm_vcpu_dump(vcpu);
    vmm_vm_request_stop(vcpu->vm, reason, (int)vcpu->index, detail);
    return false;
}

static bool exit_system_event(struct vmm_vcpu *vcpu)
{
    switch (vcpu->run->system_event.type) {
    case KVM_SYSTEM_EVENT_SHUTDOWN:
        vmm_vm_request_stop(vcpu->vm, VMM_STOP_POWEROFF, (int)vcpu->index, 0);
        return false;
    case KVM_SYSTEM_EVENT_RESET:
        vmm_vm_request_stop(vcpu->vm, VMM_STOP_RESET, (int)vcpu->index, 0);
        return false;
    default:
        return exit_fatal(vcpu, VMM_STOP_UNKNOWN_EXIT, KVM_EXIT_SYSTEM_EVENT);
    }
}

bool vmm_vcpu_handle_exit(struct vmm_vcpu *vcpu)
{
    struct kvm_run *run = vcpu->run;
    switch (run->exit_reason) {
    case KVM_EXIT_IO:
        exit_pio(vcpu);
        return true;
    case KVM_EXIT_MMIO:
        exit_mmio(vcpu);
        return true;
    case KVM_EXIT_INTR:
        return true;
    case KVM_EXIT_HLT:
        /* With the in-kernel LAPIC a halt sleeps in KVM; reaching here means
         * nothing can wake this vCPU again. */
        vmm_vm_request_stop(vcpu->vm, VMM_STOP_HALTED, (int)vcpu->index, 0);
        return false;
    case KVM_EXIT_SHUTDOWN:
        return exit_fatal(vcpu, VMM_STOP_TRIPLE_FAULT, 0);
    case KVM_EXIT_FAIL_ENTRY:
        return exit_fatal(vcpu, VMM_STOP_FAIL_ENTRY,
                          run->fail_entry.hardware_entry_failure_reason);
    case KVM_EXIT_INTERNAL_ERROR:
        return exit_fatal(vcpu, VMM_STOP_INTERNAL_ERROR, run->internal.suberror);
    case KVM_EXIT_SYSTEM_EVENT:
        return exit_system_event(vcpu);
    default:
        return exit_fatal(vcpu, VMM_STOP_UNKNOWN_EXIT, run->exit_reason);
    }
}
