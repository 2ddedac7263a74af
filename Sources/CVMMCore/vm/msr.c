/* The MSRs a vCPU starts with, beyond KVM's reset state: a TSC of 0 on
 * every vCPU (written together, KVM keeps them in step), fast strings as
 * firmware enables them, and MTRRs on with write-back as the default type
 * (no firmware runs to do it, and Linux turns PAT off when MTRRs are off,
 * leaving no write-combining for the device BARs VFIO will map). */
#include <errno.h>
#include <stddef.h>
#include <sys/ioctl.h>

#include "vm/vm_internal.h"

#define MSR_IA32_TSC 0x10
#define MSR_IA32_MISC_ENABLE 0x1a0
#define MSR_MTRR_DEF_TYPE 0x2ff

#define MISC_ENABLE_FAST_STRING (1ull << 0)
#define MTRR_ENABLE (1ull << 11)
#define MTRR_TYPE_WRBACK 6ull

int vmm_msrs_setup(struct vmm_vcpu *vcpu)
{
    static const struct { uint32_t index; uint64_t value; } boot[] = {
        { MSR_IA32_TSC, 0 },
        { MSR_IA32_MISC_ENABLE, MISC_ENABLE_FAST_STRING },
        { MSR_MTRR_DEF_TYPE, MTRR_ENABLE | MTRR_TYPE_WRBACK },
    };
    enum { COUNT = sizeof(boot) / sizeof(boot[0]) };
    /* struct kvm_msrs ends in a flexible array: room for COUNT entries. */
    union {
        struct kvm_msrs msrs;
        uint8_t bytes[sizeof(struct kvm_msrs) + COUNT * sizeof(struct kvm_msr_entry)];
    } buffer = { .msrs.nmsrs = COUNT };
    for (size_t i = 0; i < COUNT; i++)
        buffer.msrs.entries[i] = (struct kvm_msr_entry){ .index = boot[i].index, .data = boot[i].value };
    /* KVM_SET_MSRS returns how many it set: it stops at the first refused. */
    int set = ioctl(vcpu->fd, KVM_SET_MSRS, &buffer.msrs);
    if (set < 0)
        return -errno;
    return set == COUNT ? 0 : -EINVAL;
}
