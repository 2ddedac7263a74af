/* vCPU 0's state at a kernel's entry point, for the two ways in:
 * - PVH (Xen's PVH boot ABI, Linux's CONFIG_PVH entry): protected mode,
 *   paging off, flat 4 GiB segments, a valid TSS, %ebx = hvm_start_info;
 * - Linux's 64-bit boot protocol (bzImage): long mode, identity-mapped
 *   first GiB, flat 64-bit code segment, %rsi = boot_params (zero page). */
#include <errno.h>
#include <string.h>
#include <sys/ioctl.h>

#include "vm/vmm_memory.h"
#include "vm/vmm_vcpu.h"
#include "vm/vm_internal.h"

#define CR0_PE 0x1ull
#define CR0_ET 0x10ull
#define CR0_PG 0x80000000ull
#define CR4_PAE 0x20ull
#define EFER_LME 0x100ull
#define EFER_LMA 0x400ull

/* Access byte and flag nibble of a descriptor, in the layout of bits 40-55. */
#define DESC_CODE32 0xc09bu /* G, D, present, code exec/read accessed */
#define DESC_CODE64 0xa09bu /* G, L, present, code exec/read accessed */
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

/* Writes the boot GDT to guest RAM and loads flat segments from it. */
static int load_flat_segments(struct vmm_vm *vm, struct kvm_sregs *sregs, uint16_t code,
                              uint64_t gdt_gpa)
{
    uint64_t *gdt = vmm_memory_hva(vm, gdt_gpa, GDT_ENTRIES * sizeof(uint64_t));
    if (!gdt)
        return -EFAULT;
    gdt[GDT_NULL] = 0;
    gdt[GDT_CODE] = gdt_entry(code, 0, 0xfffff);
    gdt[GDT_DATA] = gdt_entry(DESC_DATA32, 0, 0xfffff);
    gdt[GDT_TSS] = gdt_entry(DESC_TSS32, 0, 0x67);

    struct kvm_segment data = segment_of(GDT_DATA, DESC_DATA32, 0, 0xfffff);
    sregs->cs = segment_of(GDT_CODE, code, 0, 0xfffff);
    sregs->ds = sregs->es = sregs->fs = sregs->gs = sregs->ss = data;
    sregs->tr = segment_of(GDT_TSS, DESC_TSS32, 0, 0x67);
    sregs->gdt.base = gdt_gpa;
    sregs->gdt.limit = GDT_ENTRIES * sizeof(uint64_t) - 1;
    /* An empty IDT: the kernel installs its own before enabling interrupts. */
    sregs->idt.base = 0;
    sregs->idt.limit = 0;
    return 0;
}

static int enter(struct vmm_vm *vm, struct kvm_sregs *sregs, uint64_t rip, uint64_t rbx, uint64_t rsi)
{
    const struct vmm_vcpu *bsp = &vm->vcpus[0];
    if (ioctl(bsp->fd, KVM_SET_SREGS, sregs) < 0)
        return -errno;
    struct kvm_regs regs;
    memset(&regs, 0, sizeof(regs));
    regs.rflags = 0x2;
    regs.rip = rip;
    regs.rbx = rbx;
    regs.rsi = rsi;
    return ioctl(bsp->fd, KVM_SET_REGS, &regs) < 0 ? -errno : 0;
}

int vmm_vcpu_setup_pvh(struct vmm_vm *vm, uint32_t entry, uint32_t start_info_gpa,
                       uint64_t gdt_gpa)
{
    if (vm->nvcpus == 0)
        return -EINVAL;
    struct kvm_sregs sregs;
    if (ioctl(vm->vcpus[0].fd, KVM_GET_SREGS, &sregs) < 0)
        return -errno;
    int ret = load_flat_segments(vm, &sregs, DESC_CODE32, gdt_gpa);
    if (ret < 0)
        return ret;
    sregs.cr0 = CR0_PE | CR0_ET;
    sregs.cr3 = 0;
    sregs.cr4 = 0;
    sregs.efer = 0;
    return enter(vm, &sregs, entry, start_info_gpa, 0);
}

/* PML4, one PDPT and one PD of 2 MiB pages: the first GiB, identity-mapped. */
static int write_identity_map(struct vmm_vm *vm, uint64_t pml4_gpa)
{
    uint64_t *tables = vmm_memory_hva(vm, pml4_gpa, 3 * 4096);
    if (!tables || (pml4_gpa & 0xfff))
        return -EFAULT;
    uint64_t *pml4 = tables, *pdpt = tables + 512, *pd = tables + 1024;
    memset(tables, 0, 3 * 4096);
    const uint64_t present_rw = 0x3, huge = 0x80;
    pml4[0] = (pml4_gpa + 0x1000) | present_rw;
    pdpt[0] = (pml4_gpa + 0x2000) | present_rw;
    for (uint64_t i = 0; i < 512; i++)
        pd[i] = (i << 21) | present_rw | huge;
    return 0;
}

int vmm_vcpu_setup_linux64(struct vmm_vm *vm, uint64_t entry, uint64_t boot_params_gpa,
                           uint64_t gdt_gpa, uint64_t pml4_gpa)
{
    if (vm->nvcpus == 0)
        return -EINVAL;
    struct kvm_sregs sregs;
    if (ioctl(vm->vcpus[0].fd, KVM_GET_SREGS, &sregs) < 0)
        return -errno;
    int ret = load_flat_segments(vm, &sregs, DESC_CODE64, gdt_gpa);
    if (ret < 0 || (ret = write_identity_map(vm, pml4_gpa)) < 0)
        return ret;
    sregs.cr0 = CR0_PE | CR0_ET | CR0_PG;
    sregs.cr3 = pml4_gpa;
    sregs.cr4 = CR4_PAE;
    sregs.efer = EFER_LME | EFER_LMA;
    return enter(vm, &sregs, entry, 0, boot_params_gpa);
}
