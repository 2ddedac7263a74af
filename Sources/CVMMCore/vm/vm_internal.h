/* Private layout of the VM and vCPU objects, shared by the core's files. */
#ifndef CVMM_VM_INTERNAL_H
#define CVMM_VM_INTERNAL_H

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <linux/kvm.h>

#include "vm/vmm_memory.h"
#include "vm/vmm_vcpu.h"
#include "vm/vmm_vm.h"

#define VMM_MAX_MEM_REGIONS 32
/* Slots for device memory, after the RAM ones. */
#define VMM_MAX_DEVICE_SLOTS 64
/* MSI routes the VM can have at once (KVM allows 4096 GSIs in all). */
#define VMM_GSI_MSI_MAX 1024

/* dirty_log.c: see vmm_dirty.h. `device[i]` is published before
 * `active` is set (release) and read after it is seen (acquire). */
struct vmm_dirty_log {
    atomic_bool active;
    _Atomic(uint64_t *) device[VMM_MAX_MEM_REGIONS];
};

/* gsi.c: the routing table's owner state; see vmm_gsi.h. */
struct vmm_gsi_routes {
    pthread_mutex_t lock;
    bool used[VMM_GSI_MSI_MAX];
    bool routed[VMM_GSI_MSI_MAX];
    uint64_t address[VMM_GSI_MSI_MAX];
    uint32_t data[VMM_GSI_MSI_MAX];
    struct kvm_irq_routing *table;
};

struct vmm_vcpu {
    struct vmm_vm *vm;
    unsigned index;
    int fd;
    struct kvm_run *run;
    pthread_t thread;
    bool started;          /* VMM thread only: created and not yet joined */
    /* Set by the VMM thread to take this vCPU's thread away (unplug);
     * the thread checks it where it checks `stopping`, same protocol. */
    atomic_bool leaving;
    /* Set by the vCPU thread itself once it can take the kick signal. A
     * stop stores `stopping` then loads this; the thread stores this then
     * loads `stopping` (both seq_cst): one of them always sees the other.
     * `self` is written by the thread before it, for the kicker. */
    pthread_t self;
    atomic_bool kickable;
};

struct vmm_vm {
    int kvm_fd; /* borrowed from the launch */
    int vm_fd;
    int run_mmap_size;
    struct vmm_bus *pio;
    struct vmm_bus *mmio;

    /* Written before the vCPUs start, read-only afterwards. */
    struct vmm_mem_region regions[VMM_MAX_MEM_REGIONS];
    unsigned nregions;
    /* A reservation RAM is placed in at base + gpa (vmm_memory_set_arena);
     * NULL: anywhere. */
    uint8_t *arena;
    uint64_t arena_size;
    /* Room for max_vcpus, allocated once so any thread may walk it; the
     * first `nvcpus` exist in KVM (a vCPU is never destroyed, an unplugged
     * one waits for its next plug). The VMM thread fills an entry, then
     * publishes it by storing `nvcpus` (seq_cst). */
    struct vmm_vcpu *vcpus;
    unsigned max_vcpus;
    atomic_uint nvcpus;
    /* VMM thread only: vCPU threads started and not joined, what a pause waits for. */
    unsigned running;

    struct vmm_gsi_routes gsi;

    struct vmm_dirty_log dirty;

    int vfio_kvm_fd; /* the KVM VFIO device, -1 without assigned devices */

    pthread_mutex_t device_slots_lock;
    struct {
        bool used;
        uint64_t gpa, size;
    } device_slots[VMM_MAX_DEVICE_SLOTS];

    int stop_fd;
    atomic_bool stopping;
    /* Also held by whoever kicks vCPU threads from outside the VMM thread
     * and by a vCPU thread leaving: a kick never meets a joined thread. */
    pthread_mutex_t stop_lock;
    struct vmm_stop_info stop;

    vmm_vcpu_thread_init_fn thread_init;
    void *thread_init_opaque;

    /* vcpu_pause.c: `pausing` is set by the VMM thread; each vCPU parks
     * on `pause_cond` at the top of its run loop and counts itself in
     * `parked`. The guest's clock is held across the pause. */
    atomic_bool pausing;
    pthread_mutex_t pause_lock;
    pthread_cond_t pause_cond;
    unsigned parked;
    struct kvm_clock_data saved_clock;
};

/* dirty_log.c: frees the devices' bitmaps; every device thread joined. */
void vmm_dirty_log_destroy(struct vmm_vm *vm);

/* memory_file.c: whether a 4 KiB page holds only zeros. */
bool vmm_page_is_zero(const uint8_t *page);

/* vcpu_state.c: vCPU `index` if KVM has it (created), else NULL. */
struct vmm_vcpu *vmm_vcpu_created(struct vmm_vm *vm, unsigned index);

/* gsi.c */
int vmm_gsi_routes_init(struct vmm_vm *vm);
void vmm_gsi_routes_destroy(struct vmm_vm *vm);

/* vcpu_kick.c */
int vmm_kick_signal_install(void);
int vmm_kick_signal(void);

/* vcpu_pause.c: parks the calling vCPU thread while the VM is paused. */
void vmm_vcpu_park(struct vmm_vcpu *vcpu);
/* Wakes parked vCPUs: the VM stops. */
void vmm_vcpus_unpark(struct vmm_vm *vm);

/* vcpu_dump.c: register dump on stderr for fatal exits. */
void vmm_vcpu_dump(const struct vmm_vcpu *vcpu);

/* vcpu_exit.c: handles one exit; false when the vCPU must stop running. */
bool vmm_vcpu_handle_exit(struct vmm_vcpu *vcpu);

/* cpuid.c: what KVM supports, fetched once per VM (the caller frees it),
 * then each vCPU's copy with its place in the topology. */
int vmm_cpuid_supported(const struct vmm_vm *vm, struct kvm_cpuid2 **out);
int vmm_cpuid_setup(struct vmm_vcpu *vcpu, const struct kvm_cpuid2 *supported);

/* msr.c: after the CPUID, which decides what MSRs the vCPU has. */
int vmm_msrs_setup(struct vmm_vcpu *vcpu);

#endif
