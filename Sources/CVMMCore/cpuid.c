/* Per-vCPU CPUID: what KVM supports, with this vCPU's APIC ID. */
#include <errno.h>
#include <stdlib.h>
#include <sys/ioctl.h>

#include "vm_internal.h"

#define CPUID_MAX_ENTRIES 256
#define CPUID_1_ECX_HYPERVISOR (1u << 31)

int vmm_cpuid_setup(struct vmm_vcpu *vcpu)
{
    struct kvm_cpuid2 *cpuid =
        calloc(1, sizeof(*cpuid) + CPUID_MAX_ENTRIES * sizeof(struct kvm_cpuid_entry2));
    if (!cpuid)
        return -ENOMEM;
    cpuid->nent = CPUID_MAX_ENTRIES;
    int ret = 0;
    if (ioctl(vcpu->vm->kvm_fd, KVM_GET_SUPPORTED_CPUID, cpuid) < 0) {
        ret = -errno;
        goto out;
    }
    uint32_t apic_id = vcpu->index;
    for (uint32_t i = 0; i < cpuid->nent; i++) {
        struct kvm_cpuid_entry2 *e = &cpuid->entries[i];
        switch (e->function) {
        case 1:
            e->ebx = (e->ebx & 0x00ffffffu) | (apic_id << 24);
            e->ecx |= CPUID_1_ECX_HYPERVISOR;
            break;
        case 0xb:
        case 0x1f:
            e->edx = apic_id;
            break;
        }
    }
    if (ioctl(vcpu->fd, KVM_SET_CPUID2, cpuid) < 0)
        ret = -errno;
out:
    free(cpuid);
    return ret;
}
