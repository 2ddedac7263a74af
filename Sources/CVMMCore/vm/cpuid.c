/* Per-vCPU CPUID: what KVM supports, with this vCPU's place in the VM's
 * topology. The topology is the one Cloud Hypervisor gives `--cpus
 * boot=N,max=M`: one package of M cores with one thread each, APIC ID =
 * vCPU index, so a vCPU plugged later already has its place. KVM
 * passes the host's topology leaves through, which would tell the guest
 * about cores and siblings it does not have. */
#include <cpuid.h>
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <sys/ioctl.h>

#include "vm/vm_internal.h"
#include "vm/vmm_state.h"

#define CPUID_MAX_ENTRIES 256
#define CPUID_1_EDX_HTT (1u << 28)
#define CPUID_1_ECX_TSC_DEADLINE (1u << 24)
#define CPUID_1_ECX_HYPERVISOR (1u << 31)
#define TOPOLOGY_LEVEL_SMT 1u
#define TOPOLOGY_LEVEL_CORE 2u

struct topology {
    uint32_t apic_id;
    uint32_t cores;
    uint32_t core_bits; /* APIC ID bits that number the cores */
};

static uint32_t order(uint32_t n)
{
    uint32_t bits = 0;
    while ((1u << bits) < n)
        bits++;
    return bits;
}

/* Leaf 0xb or 0x1f, sub-leaf `index`: SMT (1 thread), core (all vCPUs),
 * then the terminating invalid level. */
static struct kvm_cpuid_entry2 extended_topology(uint32_t function, uint32_t index,
                                                 const struct topology *t)
{
    struct kvm_cpuid_entry2 e = {
        .function = function, .index = index,
        .flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX, .edx = t->apic_id,
    };
    switch (index) {
    case 0:
        e.ebx = 1;
        e.ecx = (TOPOLOGY_LEVEL_SMT << 8) | index;
        break;
    case 1:
        e.eax = t->core_bits;
        e.ebx = t->cores;
        e.ecx = (TOPOLOGY_LEVEL_CORE << 8) | index;
        break;
    default:
        e.ecx = index;
        break;
    }
    return e;
}

static void set_topology(struct kvm_cpuid_entry2 *e, const struct topology *t)
{
    switch (e->function) {
    case 1:
        /* Addressable logical processors per package, and this APIC ID. */
        e->ebx = (e->ebx & 0x0000ffffu) | ((1u << t->core_bits) << 16) | (t->apic_id << 24);
        e->edx = t->cores > 1 ? (e->edx | CPUID_1_EDX_HTT) : (e->edx & ~CPUID_1_EDX_HTT);
        break;
    case 4:
        /* Intel cache leaves: cores per package, and one thread per cache
         * except for level 3 and above, which all cores share. */
        if ((e->eax & 0x1f) == 0)
            break;
        uint32_t sharing = ((e->eax >> 5) & 7) >= 3 ? (1u << t->core_bits) - 1 : 0;
        e->eax = (e->eax & 0x3fffu) | (sharing << 14) | (((1u << t->core_bits) - 1) << 26);
        break;
    case 0x80000008:
        /* AMD: cores per package minus one, and the bits that number them. */
        e->ecx = (e->ecx & ~0xf0ffu) | (t->core_bits << 12) | (t->cores - 1);
        break;
    case 0x8000001e:
        /* AMD: extended APIC ID, core ID with one thread, node 0. */
        e->eax = t->apic_id;
        e->ebx = t->apic_id & 0xffu;
        e->ecx = 0;
        break;
    }
}

/* KVM leaves the processor's name (leaves 0x80000002-4) empty, and a
 * guest then names its CPU from a family table ("AMD Hammer" in
 * /proc/cpuinfo). The host's name, as Cloud Hypervisor and QEMU's
 * `-cpu host` give it. */
static void host_name(struct kvm_cpuid_entry2 *e)
{
    if (e->function < 0x80000002 || e->function > 0x80000004 || __get_cpuid_max(0x80000000, NULL) < 0x80000004)
        return;
    __cpuid(e->function, e->eax, e->ebx, e->ecx, e->edx);
}

static struct kvm_cpuid2 *cpuid_alloc(void)
{
    return calloc(1, sizeof(struct kvm_cpuid2) + CPUID_MAX_ENTRIES * sizeof(struct kvm_cpuid_entry2));
}

int vmm_cpuid_supported(const struct vmm_vm *vm, struct kvm_cpuid2 **out)
{
    struct kvm_cpuid2 *cpuid = cpuid_alloc();
    if (!cpuid)
        return -ENOMEM;
    cpuid->nent = CPUID_MAX_ENTRIES - 6; /* room for the topology leaves */
    if (ioctl(vm->kvm_fd, KVM_GET_SUPPORTED_CPUID, cpuid) < 0) {
        int err = errno;
        free(cpuid);
        return -err;
    }
    /* The in-kernel LAPIC emulates TSC-deadline mode; KVM leaves the bit to us. */
    bool tsc_deadline = ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_TSC_DEADLINE_TIMER) > 0;
    for (uint32_t i = 0; i < cpuid->nent; i++) {
        struct kvm_cpuid_entry2 *e = &cpuid->entries[i];
        host_name(e);
        if (e->function != 1)
            continue;
        e->ecx |= CPUID_1_ECX_HYPERVISOR;
        if (tsc_deadline)
            e->ecx |= CPUID_1_ECX_TSC_DEADLINE;
    }
    *out = cpuid;
    return 0;
}

int vmm_cpuid_setup(struct vmm_vcpu *vcpu, const struct kvm_cpuid2 *supported)
{
    struct kvm_cpuid2 *cpuid = cpuid_alloc();
    if (!cpuid)
        return -ENOMEM;
    const struct topology t = {
        .apic_id = vcpu->index,
        .cores = vcpu->vm->max_vcpus,
        .core_bits = order(vcpu->vm->max_vcpus),
    };
    /* Drop the host's 0xb/0x1f sub-leaves; write ours where the host had them. */
    bool has_leaf[2] = { false, false };
    uint32_t kept = 0;
    for (uint32_t i = 0; i < supported->nent; i++) {
        const struct kvm_cpuid_entry2 *e = &supported->entries[i];
        if (e->function == 0xb || e->function == 0x1f) {
            has_leaf[e->function == 0x1f] = true;
            continue;
        }
        cpuid->entries[kept] = *e;
        set_topology(&cpuid->entries[kept++], &t);
    }
    static const uint32_t leaves[2] = { 0xb, 0x1f };
    for (int l = 0; l < 2; l++) {
        if (!has_leaf[l])
            continue;
        for (uint32_t index = 0; index < 3; index++)
            cpuid->entries[kept++] = extended_topology(leaves[l], index, &t);
    }
    cpuid->nent = kept;
    int ret = ioctl(vcpu->fd, KVM_SET_CPUID2, cpuid) < 0 ? -errno : 0;
    free(cpuid);
    return ret;
}

_Static_assert(sizeof(struct vmm_cpuid_state) == 10248, "CPUID state layout changed: bump VMM_CPUID_STATE_VERSION");
_Static_assert(VMM_CPUID_STATE_MAX_ENTRIES >= CPUID_MAX_ENTRIES, "a vCPU's CPUID must fit its state");

int vmm_vcpu_save_cpuid(struct vmm_vm *vm, unsigned index, struct vmm_cpuid_state *out)
{
    struct vmm_vcpu *vcpu = vmm_vcpu_created(vm, index);
    if (!vcpu)
        return -EINVAL;
    struct kvm_cpuid2 *cpuid = cpuid_alloc();
    if (!cpuid)
        return -ENOMEM;
    cpuid->nent = CPUID_MAX_ENTRIES;
    int ret = ioctl(vcpu->fd, KVM_GET_CPUID2, cpuid) < 0 ? -errno : 0;
    if (ret == 0) {
        *out = (struct vmm_cpuid_state){ .nent = cpuid->nent };
        for (uint32_t i = 0; i < cpuid->nent; i++)
            out->entries[i] = cpuid->entries[i];
    }
    free(cpuid);
    return ret;
}

#define CPUID_1_ECX_OSXSAVE (1u << 27)
#define CPUID_7_ECX_OSPKE (1u << 4)

/* The feature words a guest acts on: each saved bit must be one this VMM
 * gives a vCPU on this host (what vmm_cpuid_setup made of KVM's), apart from those that reflect the guest's own settings (OSXSAVE, OSPKE
 * follow its CR4) or the topology this VMM writes (HTT). */
static const struct {
    uint32_t function, index;
    size_t word; /* offsetof the register in kvm_cpuid_entry2 */
    uint32_t ignored;
} features[] = {
    { 1, 0, offsetof(struct kvm_cpuid_entry2, ecx), CPUID_1_ECX_OSXSAVE },
    { 1, 0, offsetof(struct kvm_cpuid_entry2, edx), CPUID_1_EDX_HTT },
    { 7, 0, offsetof(struct kvm_cpuid_entry2, ebx), 0 },
    { 7, 0, offsetof(struct kvm_cpuid_entry2, ecx), CPUID_7_ECX_OSPKE },
    { 7, 0, offsetof(struct kvm_cpuid_entry2, edx), 0 },
    { 0xd, 1, offsetof(struct kvm_cpuid_entry2, eax), 0 },
    { 0x80000001, 0, offsetof(struct kvm_cpuid_entry2, ecx), 0 },
    { 0x80000001, 0, offsetof(struct kvm_cpuid_entry2, edx), 0 },
};

static const struct kvm_cpuid_entry2 *entry(const struct kvm_cpuid_entry2 *entries, uint32_t n, uint32_t function,
                                           uint32_t index)
{
    for (uint32_t i = 0; i < n; i++)
        if (entries[i].function == function && (entries[i].index == index || (function != 7 && function != 0xd)))
            return &entries[i];
    return NULL;
}

static uint32_t word(const struct kvm_cpuid_entry2 *e, size_t offset)
{
    return e ? *(const uint32_t *)((const uint8_t *)e + offset) : 0;
}

int vmm_vcpu_restore_cpuid(struct vmm_vm *vm, unsigned index, const struct vmm_cpuid_state *state)
{
    struct vmm_vcpu *vcpu = vmm_vcpu_created(vm, index);
    if (!vcpu || state->nent == 0 || state->nent > VMM_CPUID_STATE_MAX_ENTRIES)
        return -EINVAL;
    /* What this VMM gives a vCPU on this host: the one just created has it. */
    struct vmm_cpuid_state *here = malloc(sizeof(*here));
    if (!here)
        return -ENOMEM;
    int ret = vmm_vcpu_save_cpuid(vm, index, here);
    for (size_t f = 0; f < sizeof(features) / sizeof(features[0]) && ret == 0; f++) {
        uint32_t saved = word(entry(state->entries, state->nent, features[f].function, features[f].index), features[f].word);
        uint32_t offered = word(entry(here->entries, here->nent, features[f].function, features[f].index), features[f].word);
        if (saved & ~offered & ~features[f].ignored)
            ret = -EOPNOTSUPP;
    }
    free(here);
    if (ret < 0)
        return ret;
    struct kvm_cpuid2 *cpuid = cpuid_alloc();
    if (!cpuid)
        return -ENOMEM;
    cpuid->nent = state->nent;
    for (uint32_t i = 0; i < state->nent; i++)
        cpuid->entries[i] = state->entries[i];
    ret = ioctl(vcpu->fd, KVM_SET_CPUID2, cpuid) < 0 ? -errno : 0;
    free(cpuid);
    return ret;
}
