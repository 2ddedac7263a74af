/* vCPU 0's state at a PVH entry point (Xen's PVH boot ABI, which Linux's
 * CONFIG_PVH entry expects): protected mode, paging off, flat 4 GiB code
 * and data segments, a valid TSS, %ebx = physical address of hvm_start_info. */
#include <errno.h>
#include <string.h>
#include <sys/ioctl.h>

#include "vmm_memory.h"
#include "vmm_vcpu.h"
#include "vm_internal.h"

#define CR0_PE 0x1ull
#define CR0_ET 0x10ull

/* Access byte and flag nibble of a descriptor, in the layout of bits 40-55. */
#define DESC_CODE32 0xc09bu /* G, D, present, code exec/read accessed */
#define DESC_DATA32 0xc093u /* G, B, present, data read/write accessed */
#define DESC_TSS32  0x008bu /* present, busy 32-bit TSS */

enum { GDT_NULL, GDT_CODE, GDT_DATA, GDT_TSS, GDT_ENTRIES };

static uint64_t gdt_entry(uint16_t flags, uint32_t base, uint32_t limit)
{
    return ((uint64_t)(base & 0xff000000u) << 32) | ((uint64_t)(base & 0x00ffffffu) << 16) |
           (limit & 0xffffu) | ((uint64_t)(limit & 0xf0000u) << 32) |
           ((uint64_t)(flags & 0xf0ffu) << 40);
}

static struct kvm_segment segment_of(unsigned index, uint16_t flags, uint32_t base, uint32_t limit)
{
    bool g = (flags >> 15) & 1;
    return (struct kvm_segment){
        .base = base,
        .limit = g ? (limit << 12) | 0xfffu : limit,
        .selector = (uint16_t)(index * 8),
        .type = flags & 0xf,
        .s = (flags >> 4) & 1,
        .dpl = (flags >> 5) & 3,
        .present = (flags >> 7) & 1,
        .avl = (flags >> 12) & 1,
        .l = (flags >> 13) & 1,
        .db = (flags >> 14) & 1,
        .g = g,
    };
}

int vmm_vcpu_setup_pvh(struct vmm_vm *vm, uint32_t entry, uint32_t start_info_gpa,
                       uint64_t gdt_gpa)
{
    if (vm->nvcpus == 0)
        return -EINVAL;
    uint64_t *gdt = vmm_memory_hva(vm, gdt_gpa, GDT_ENTRIES * sizeof(uint64_t));
    if (!gdt)
        return -EFAULT;
    gdt[GDT_NULL] = 0;
    gdt[GDT_CODE] = gdt_entry(DESC_CODE32, 0, 0xfffff);
    gdt[GDT_DATA] = gdt_entry(DESC_DATA32, 0, 0xfffff);
    gdt[GDT_TSS] = gdt_entry(DESC_TSS32, 0, 0x67);

    const struct vmm_vcpu *bsp = &vm->vcpus[0];
    struct kvm_sregs sregs;
    if (ioctl(bsp->fd, KVM_GET_SREGS, &sregs) < 0)
        return -errno;
    struct kvm_segment data = segment_of(GDT_DATA, DESC_DATA32, 0, 0xfffff);
    sregs.cs = segment_of(GDT_CODE, DESC_CODE32, 0, 0xfffff);
    sregs.ds = sregs.es = sregs.fs = sregs.gs = sregs.ss = data;
    sregs.tr = segment_of(GDT_TSS, DESC_TSS32, 0, 0x67);
    sregs.gdt.base = gdt_gpa;
    sregs.gdt.limit = GDT_ENTRIES * sizeof(uint64_t) - 1;
    /* An empty IDT: the kernel installs its own before enabling interrupts. */
    sregs.idt.base = 0;
    sregs.idt.limit = 0;
    sregs.cr0 = CR0_PE | CR0_ET;
    sregs.cr3 = 0;
    sregs.cr4 = 0;
    sregs.efer = 0;
    if (ioctl(bsp->fd, KVM_SET_SREGS, &sregs) < 0)
        return -errno;

    struct kvm_regs regs;
    memset(&regs, 0, sizeof(regs));
    regs.rflags = 0x2;
    regs.rip = entry;
    regs.rbx = start_info_gpa;
    if (ioctl(bsp->fd, KVM_SET_REGS, &regs) < 0)
        return -errno;
    return 0;
}
