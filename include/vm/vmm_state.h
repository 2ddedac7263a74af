/* What KVM holds of a VM and its vCPUs, for snapshot and restore: each a
 * fixed-size struct of KVM's own uapi types, so a snapshot file is a copy
 * of it. A layout change bumps its version (checked by whoever reads a
 * snapshot), and the _Static_asserts in vcpu_state.c catch one made by
 * accident. Save and restore run on the VMM thread with every vCPU parked
 * (vmm_vm_pause) or not started yet. */
#ifndef VMM_STATE_H
#define VMM_STATE_H

#include <linux/kvm.h>
#include <stdint.h>

struct vmm_vm;

#define VMM_VCPU_STATE_VERSION 1
/* KVM_GET_MSR_INDEX_LIST lists about 150 on current hosts. */
#define VMM_VCPU_STATE_MAX_MSRS 512

struct vmm_vcpu_state {
    struct kvm_regs regs;
    struct kvm_sregs sregs;
    uint32_t xsave[1024]; /* struct kvm_xsave without its flexible tail (KVM_GET_XSAVE fills 4 KiB) */
    struct kvm_xcrs xcrs;
    struct kvm_lapic_state lapic;
    struct kvm_vcpu_events events;
    struct kvm_mp_state mp_state;
    struct kvm_debugregs debugregs;
    uint32_t nmsrs;
    uint32_t reserved;
    struct kvm_msr_entry msrs[VMM_VCPU_STATE_MAX_MSRS];
};

#define VMM_VM_STATE_VERSION 1

struct vmm_vm_state {
    struct kvm_irqchip pic_master, pic_slave, ioapic;
    struct kvm_pit_state2 pit;
    /* The guest's clock: held since the pause, so no paused time shows. */
    struct kvm_clock_data clock;
};

/* vCPU `index` (created): -EINVAL if it is not, else 0 or the negative
 * errno of the first KVM call that failed; `*step` names it. */
int vmm_vcpu_save(struct vmm_vm *vm, unsigned index, struct vmm_vcpu_state *out, const char **step);
/* Before its thread starts: KVM's order (MSRs, registers, FPU, LAPIC,
 * then the events and MP state that depend on them). */
int vmm_vcpu_restore(struct vmm_vm *vm, unsigned index, const struct vmm_vcpu_state *state, const char **step);

/* A vCPU's CPUID as the guest saw it, a record of its own so that a
 * snapshot from before it was kept is still read (with this host's). */
#define VMM_CPUID_STATE_VERSION 1
#define VMM_CPUID_STATE_MAX_ENTRIES 256
struct vmm_cpuid_state {
    uint32_t nent;
    uint32_t reserved;
    struct kvm_cpuid_entry2 entries[VMM_CPUID_STATE_MAX_ENTRIES];
};
int vmm_vcpu_save_cpuid(struct vmm_vm *vm, unsigned index, struct vmm_cpuid_state *out);
/* Before vmm_vcpu_restore, on a vCPU as created: the guest keeps the CPU
 * it was running on. -EOPNOTSUPP if that names a feature this host's vCPU
 * does not have (the guest would fault on its first use), -EINVAL for a
 * malformed state. */
int vmm_vcpu_restore_cpuid(struct vmm_vm *vm, unsigned index, const struct vmm_cpuid_state *state);

/* A paused VM (vmm_vm_pause) or a running one: the clock as it stands. */
int vmm_vm_save(struct vmm_vm *vm, struct vmm_vm_state *out, const char **step);
/* Before the vCPUs start: the irqchips and PIT set, the clock held for
 * vmm_vm_resume and every vCPU parked at its first loop, so the restored
 * VM is paused until then. */
int vmm_vm_restore(struct vmm_vm *vm, const struct vmm_vm_state *state, const char **step);

#endif
