/* A KVM virtual machine: /dev/kvm, the VM fd, in-kernel irqchip and PIT,
 * the PIO and MMIO buses, its vCPUs, and how it stops. */
#ifndef VMM_VM_H
#define VMM_VM_H

#include <stdint.h>

struct vmm_vm;
struct vmm_bus;

/* Where creation failed: `what` names the step (a static string), `code` is
 * the negative errno. */
struct vmm_error {
    int code;
    const char *what;
};

/* Why a VM stopped. The first request wins; later ones are ignored. */
enum vmm_stop_reason {
    VMM_STOP_NONE = 0,
    VMM_STOP_POWEROFF,        /* guest wrote S5 to the ACPI sleep register */
    VMM_STOP_RESET,           /* guest asked for a reset (ACPI or i8042) */
    VMM_STOP_REQUESTED,       /* the VMM asked (signal, API, shutdown) */
    VMM_STOP_TRIPLE_FAULT,    /* KVM_EXIT_SHUTDOWN */
    VMM_STOP_FAIL_ENTRY,      /* KVM_EXIT_FAIL_ENTRY; detail = hw reason */
    VMM_STOP_INTERNAL_ERROR,  /* KVM_EXIT_INTERNAL_ERROR; detail = suberror */
    VMM_STOP_HALTED,          /* KVM_EXIT_HLT with nothing able to wake it */
    VMM_STOP_UNKNOWN_EXIT,    /* detail = exit_reason */
    VMM_STOP_RUN_ERROR,       /* KVM_RUN failed; detail = errno */
    VMM_STOP_VCPU_SETUP,      /* a vCPU thread's init hook failed; detail = errno */
    VMM_STOP_GUEST_PANIC,     /* the guest kernel reported a panic (pvpanic) */
};

struct vmm_stop_info {
    enum vmm_stop_reason reason;
    int vcpu;          /* index of the vCPU that stopped the VM, or -1 */
    uint64_t detail;
};

/* Opens /dev/kvm and checks the API version and the extensions the VMM
 * needs. Done once per launch, before privileges are dropped: every boot
 * (a guest reset reboots) creates its VM from this fd. */
int vmm_kvm_open(int *out_fd, struct vmm_error *err);

/* Creates a VM with its in-kernel irqchip and PIT. `kvm_fd` stays the
 * caller's. */
int vmm_vm_create(int kvm_fd, struct vmm_vm **out, struct vmm_error *err);
/* Stops and joins the vCPUs, then releases every fd and mapping. */
void vmm_vm_destroy(struct vmm_vm *vm);

int vmm_vm_fd(const struct vmm_vm *vm);
struct vmm_bus *vmm_vm_pio_bus(struct vmm_vm *vm);
struct vmm_bus *vmm_vm_mmio_bus(struct vmm_vm *vm);

/* Asks every vCPU to leave KVM_RUN and records why. Safe from any thread,
 * including a vCPU's own device handler. */
void vmm_vm_request_stop(struct vmm_vm *vm, enum vmm_stop_reason reason,
                         int vcpu, uint64_t detail);
/* An eventfd that becomes readable once a stop has been requested, for the
 * VMM's event loop. Owned by the VM. */
int vmm_vm_stop_eventfd(const struct vmm_vm *vm);
struct vmm_stop_info vmm_vm_stop_info(struct vmm_vm *vm);

/* VMM thread only. Takes every vCPU out of KVM_RUN and parks it between
 * two exits (no access is half done), for a device change: the guest's
 * clock runs on. 0 once all are parked; -ECANCELED if the VM stopped
 * meanwhile; -ETIMEDOUT if a vCPU did not park within 5 s (the vCPUs stay
 * parking: release them). */
int vmm_vcpus_quiesce(struct vmm_vm *vm);
/* Wakes the vCPUs a quiesce parked. */
void vmm_vcpus_release(struct vmm_vm *vm);
/* vm.pause: a quiesce that also holds the guest's clock, so the guest does
 * not see the pause pass. Errors as vmm_vcpus_quiesce (resume it). */
int vmm_vm_pause(struct vmm_vm *vm);
/* Gives the guest its clock back where it was held and wakes the vCPUs. */
int vmm_vm_resume(struct vmm_vm *vm);

#endif
