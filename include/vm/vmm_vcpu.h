/* vCPUs: created and run on threads owned by the C core. */
#ifndef VMM_VCPU_H
#define VMM_VCPU_H

#include <stdint.h>

struct vmm_vm;

/* Called on each vCPU thread after it is named and its signal mask is set,
 * before the first KVM_RUN: the place to confine the thread (seccomp). A
 * non-zero return (negative errno) stops the VM before any guest code runs. */
typedef int (*vmm_vcpu_thread_init_fn)(void *opaque, unsigned index);

/* Creates `count` vCPUs with KVM's supported CPUID, each with its own APIC
 * ID, in a VM that may have up to `max` (vmm_vcpu_plug). */
int vmm_vcpus_create(struct vmm_vm *vm, unsigned count, unsigned max);
/* vCPU threads running (started and not unplugged). VMM thread only. */
unsigned vmm_vcpu_count(const struct vmm_vm *vm);

/* Puts vCPU 0 at a PVH entry point: 32-bit protected mode, paging off,
 * flat segments, %ebx = `start_info_gpa` (Xen's PVH boot ABI). Writes the
 * boot GDT into guest RAM at `gdt_gpa` (needs 32 bytes). */
int vmm_vcpu_setup_pvh(struct vmm_vm *vm, uint32_t entry, uint32_t start_info_gpa,
                       uint64_t gdt_gpa);

/* Puts vCPU 0 at a 64-bit Linux boot protocol entry: long mode with the
 * first GiB identity-mapped (page tables written at `pml4_gpa`, 12 KiB,
 * page-aligned), flat 64-bit segments from a GDT at `gdt_gpa`, %rsi =
 * `boot_params_gpa` (the zero page). */
int vmm_vcpu_setup_linux64(struct vmm_vm *vm, uint64_t entry, uint64_t boot_params_gpa,
                           uint64_t gdt_gpa, uint64_t pml4_gpa);

/* Starts one thread per vCPU ("vcpu<N>"); each calls `init` first. */
int vmm_vcpus_start(struct vmm_vm *vm, vmm_vcpu_thread_init_fn init, void *opaque);

/* Waits for every vCPU thread to finish. Call after a stop was requested. */
void vmm_vcpus_join(struct vmm_vm *vm);

/* Hotplug, VMM thread only, after vmm_vcpus_start. vCPU `index` (< max)
 * is created in KVM if it never was, and its thread started with the
 * same init hook; the guest brings it up with INIT/SIPI once it is told.
 * 0 when it runs already. */
int vmm_vcpu_plug(struct vmm_vm *vm, unsigned index);
/* Takes vCPU `index`'s thread out of KVM_RUN for good and joins it; KVM
 * keeps the vCPU (it cannot be destroyed) for a later plug. For a vCPU
 * the guest has let go of (its ACPI eject). */
void vmm_vcpu_unplug(struct vmm_vm *vm, unsigned index);

#endif
