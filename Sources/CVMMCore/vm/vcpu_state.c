/* A vCPU's and the VM's KVM state: see vmm_state.h. */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <sys/ioctl.h>

#include "vm/vmm_state.h"
#include "vm/vm_internal.h"

/* A snapshot is these bytes: a change of KVM's layout or of ours must
 * show here and bump VMM_VCPU_STATE_VERSION / VMM_VM_STATE_VERSION. */
_Static_assert(sizeof(struct vmm_vcpu_state) == 14368, "vCPU state layout changed: bump VMM_VCPU_STATE_VERSION");
_Static_assert(sizeof(struct vmm_vm_state) == 1720, "VM state layout changed: bump VMM_VM_STATE_VERSION");

#define MSR_LIST_BYTES (sizeof(struct kvm_msr_list) + VMM_VCPU_STATE_MAX_MSRS * sizeof(uint32_t))
#define MSRS_BYTES (sizeof(struct kvm_msrs) + VMM_VCPU_STATE_MAX_MSRS * sizeof(struct kvm_msr_entry))

static int fail(const char **step, const char *what, int code)
{
    *step = what;
    return code;
}

/* Every MSR KVM lists as saved or emulated that this vCPU can read: a
 * KVM_GET_MSRS stops at the first one it refuses, which is skipped. */
static int save_msrs(struct vmm_vcpu *vcpu, struct vmm_vcpu_state *out)
{
    struct kvm_msr_list *list = calloc(1, MSR_LIST_BYTES);
    struct kvm_msrs *msrs = calloc(1, MSRS_BYTES);
    int ret = 0;
    if (!list || !msrs) {
        ret = -ENOMEM;
        goto done;
    }
    list->nmsrs = VMM_VCPU_STATE_MAX_MSRS;
    if (ioctl(vcpu->vm->kvm_fd, KVM_GET_MSR_INDEX_LIST, list) < 0) {
        ret = -errno;
        goto done;
    }
    out->nmsrs = 0;
    for (uint32_t i = 0; i < list->nmsrs;) {
        uint32_t batch = list->nmsrs - i;
        msrs->nmsrs = batch;
        for (uint32_t j = 0; j < batch; j++)
            msrs->entries[j] = (struct kvm_msr_entry){ .index = list->indices[i + j] };
        int got = ioctl(vcpu->fd, KVM_GET_MSRS, msrs);
        if (got < 0) {
            ret = -errno;
            goto done;
        }
        for (int j = 0; j < got; j++)
            out->msrs[out->nmsrs++] = msrs->entries[j];
        i += (uint32_t)got + 1;
    }
done:
    free(list);
    free(msrs);
    return ret;
}

static int restore_msrs(struct vmm_vcpu *vcpu, const struct vmm_vcpu_state *state)
{
    if (state->nmsrs > VMM_VCPU_STATE_MAX_MSRS)
        return -EINVAL;
    struct kvm_msrs *msrs = calloc(1, MSRS_BYTES);
    if (!msrs)
        return -ENOMEM;
    msrs->nmsrs = state->nmsrs;
    for (uint32_t i = 0; i < state->nmsrs; i++)
        msrs->entries[i] = state->msrs[i];
    int set = ioctl(vcpu->fd, KVM_SET_MSRS, msrs);
    int ret = set < 0 ? -errno : (uint32_t)set == state->nmsrs ? 0 : -EINVAL;
    free(msrs);
    return ret;
}

#define MSR_IA32_TSC_DEADLINE 0x6e0

/* KVM drops a TSC deadline written while the LAPIC's timer is not in
 * TSC-deadline mode, which a fresh vCPU's is not: the MSR goes again once
 * the LAPIC is set, or the vCPU waits for ever on a timer that never
 * fires (the guest's RCU stalls on it). */
static int restore_tsc_deadline(struct vmm_vcpu *vcpu, const struct vmm_vcpu_state *state)
{
    for (uint32_t i = 0; i < state->nmsrs && i < VMM_VCPU_STATE_MAX_MSRS; i++) {
        if (state->msrs[i].index != MSR_IA32_TSC_DEADLINE)
            continue;
        union {
            struct kvm_msrs msrs;
            uint8_t bytes[sizeof(struct kvm_msrs) + sizeof(struct kvm_msr_entry)];
        } one = { .msrs.nmsrs = 1 };
        one.msrs.entries[0] = state->msrs[i];
        int set = ioctl(vcpu->fd, KVM_SET_MSRS, &one);
        return set < 0 ? -errno : set == 1 ? 0 : -EINVAL;
    }
    return 0;
}

struct vmm_vcpu *vmm_vcpu_created(struct vmm_vm *vm, unsigned index)
{
    return vm->vcpus && index < atomic_load(&vm->nvcpus) ? &vm->vcpus[index] : NULL;
}

#define PIECE(get, set, field) { get, set, offsetof(struct vmm_vcpu_state, field), #get, #set }

/* Each piece of the state once, in the order a restore sets them: the
 * events last, as what is pending is checked against the LAPIC and the
 * registers already in place. The MSRs go first, apart (save_msrs). */
static const struct {
    unsigned long get, set;
    size_t offset;
    const char *get_name, *set_name;
} pieces[] = {
    PIECE(KVM_GET_SREGS, KVM_SET_SREGS, sregs),
    PIECE(KVM_GET_REGS, KVM_SET_REGS, regs),
    PIECE(KVM_GET_XSAVE, KVM_SET_XSAVE, xsave),
    PIECE(KVM_GET_XCRS, KVM_SET_XCRS, xcrs),
    PIECE(KVM_GET_DEBUGREGS, KVM_SET_DEBUGREGS, debugregs),
    PIECE(KVM_GET_LAPIC, KVM_SET_LAPIC, lapic),
    PIECE(KVM_GET_MP_STATE, KVM_SET_MP_STATE, mp_state),
    PIECE(KVM_GET_VCPU_EVENTS, KVM_SET_VCPU_EVENTS, events),
};

int vmm_vcpu_save(struct vmm_vm *vm, unsigned index, struct vmm_vcpu_state *out, const char **step)
{
    struct vmm_vcpu *vcpu = vmm_vcpu_created(vm, index);
    if (!vcpu)
        return fail(step, "find the vCPU", -EINVAL);
    *out = (struct vmm_vcpu_state){ 0 };
    for (size_t i = 0; i < sizeof(pieces) / sizeof(pieces[0]); i++)
        if (ioctl(vcpu->fd, pieces[i].get, (uint8_t *)out + pieces[i].offset) < 0)
            return fail(step, pieces[i].get_name, -errno);
    int ret = save_msrs(vcpu, out);
    return ret < 0 ? fail(step, "KVM_GET_MSRS", ret) : 0;
}

int vmm_vcpu_restore(struct vmm_vm *vm, unsigned index, const struct vmm_vcpu_state *state, const char **step)
{
    struct vmm_vcpu *vcpu = vmm_vcpu_created(vm, index);
    if (!vcpu)
        return fail(step, "find the vCPU", -EINVAL);
    int ret = restore_msrs(vcpu, state);
    if (ret < 0)
        return fail(step, "KVM_SET_MSRS", ret);
    for (size_t i = 0; i < sizeof(pieces) / sizeof(pieces[0]); i++)
        if (ioctl(vcpu->fd, pieces[i].set, (uint8_t *)state + pieces[i].offset) < 0)
            return fail(step, pieces[i].set_name, -errno);
    ret = restore_tsc_deadline(vcpu, state);
    return ret < 0 ? fail(step, "KVM_SET_MSRS (TSC deadline)", ret) : 0;
}

static int irqchip(struct vmm_vm *vm, struct kvm_irqchip *chip, uint32_t id, bool set)
{
    chip->chip_id = id;
    return ioctl(vm->vm_fd, set ? KVM_SET_IRQCHIP : KVM_GET_IRQCHIP, chip) < 0 ? -errno : 0;
}

int vmm_vm_save(struct vmm_vm *vm, struct vmm_vm_state *out, const char **step)
{
    *out = (struct vmm_vm_state){ 0 };
    int ret;
    if ((ret = irqchip(vm, &out->pic_master, KVM_IRQCHIP_PIC_MASTER, false)) < 0 ||
        (ret = irqchip(vm, &out->pic_slave, KVM_IRQCHIP_PIC_SLAVE, false)) < 0 ||
        (ret = irqchip(vm, &out->ioapic, KVM_IRQCHIP_IOAPIC, false)) < 0)
        return fail(step, "KVM_GET_IRQCHIP", ret);
    if (ioctl(vm->vm_fd, KVM_GET_PIT2, &out->pit) < 0)
        return fail(step, "KVM_GET_PIT2", -errno);
    if (vm->saved_clock.clock)
        out->clock.clock = vm->saved_clock.clock;
    else if (ioctl(vm->vm_fd, KVM_GET_CLOCK, &out->clock) < 0)
        return fail(step, "KVM_GET_CLOCK", -errno);
    return 0;
}

int vmm_vm_restore(struct vmm_vm *vm, const struct vmm_vm_state *state, const char **step)
{
    struct vmm_vm_state s = *state;
    int ret;
    if ((ret = irqchip(vm, &s.pic_master, KVM_IRQCHIP_PIC_MASTER, true)) < 0 ||
        (ret = irqchip(vm, &s.pic_slave, KVM_IRQCHIP_PIC_SLAVE, true)) < 0 ||
        (ret = irqchip(vm, &s.ioapic, KVM_IRQCHIP_IOAPIC, true)) < 0)
        return fail(step, "KVM_SET_IRQCHIP", ret);
    if (ioctl(vm->vm_fd, KVM_SET_PIT2, &s.pit) < 0)
        return fail(step, "KVM_SET_PIT2", -errno);
    if (s.clock.clock == 0)
        return fail(step, "read the guest clock", -EINVAL);
    vm->saved_clock = (struct kvm_clock_data){ .clock = s.clock.clock };
    atomic_store(&vm->pausing, true);
    return 0;
}
