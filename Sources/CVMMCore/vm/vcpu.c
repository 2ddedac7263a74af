/* vCPU creation and the threads that run them. */
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/mman.h>

#include "common/vmm_sys.h"
#include "vm/vmm_vcpu.h"
#include "vm/vm_internal.h"

static int vcpu_create(struct vmm_vcpu *vcpu, const struct kvm_cpuid2 *supported)
{
    vcpu->fd = ioctl(vcpu->vm->vm_fd, KVM_CREATE_VCPU, (unsigned long)vcpu->index);
    if (vcpu->fd < 0)
        return -errno;
    void *run = mmap(NULL, (size_t)vcpu->vm->run_mmap_size, PROT_READ | PROT_WRITE,
                     MAP_SHARED, vcpu->fd, 0);
    if (run == MAP_FAILED)
        return -errno;
    vcpu->run = run;
    int ret = vmm_cpuid_setup(vcpu, supported);
    return ret < 0 ? ret : vmm_msrs_setup(vcpu);
}

static int vcpus_add(struct vmm_vm *vm, unsigned count)
{
    struct kvm_cpuid2 *supported = NULL;
    int ret = vmm_cpuid_supported(vm, &supported);
    while (ret == 0 && atomic_load(&vm->nvcpus) < count) {
        unsigned index = atomic_load(&vm->nvcpus);
        struct vmm_vcpu *vcpu = &vm->vcpus[index];
        ret = vcpu_create(vcpu, supported);
        if (ret == 0)
            atomic_store(&vm->nvcpus, index + 1);
    }
    free(supported);
    return ret;
}

int vmm_vcpus_create(struct vmm_vm *vm, unsigned count, unsigned max)
{
    if (count == 0 || max < count || vm->vcpus)
        return -EINVAL;
    int limit = ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_MAX_VCPUS);
    if (limit <= 0)
        limit = ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_NR_VCPUS);
    if (limit > 0 && max > (unsigned)limit)
        return -E2BIG;
    vm->vcpus = calloc(max, sizeof(*vm->vcpus));
    if (!vm->vcpus)
        return -ENOMEM;
    for (unsigned i = 0; i < max; i++)
        vm->vcpus[i] = (struct vmm_vcpu){ .vm = vm, .index = i, .fd = -1 };
    vm->max_vcpus = max;
    return vcpus_add(vm, count);
}

unsigned vmm_vcpu_count(const struct vmm_vm *vm) { return vm->running; }

/* Signals a vCPU thread must take itself: the kick, and faults it causes
 * (a seccomp trap included) so they reach their handlers on this thread. */
static void vcpu_unblock_signals(void)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, vmm_kick_signal());
    int faults[] = { SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGSYS, SIGABRT, SIGTRAP };
    for (size_t i = 0; i < sizeof(faults) / sizeof(faults[0]); i++)
        sigaddset(&set, faults[i]);
    pthread_sigmask(SIG_UNBLOCK, &set, NULL);
}

/* The last thing a vCPU thread does: no kick aims at it any more (a
 * kicker holds stop_lock while it kicks), so joining it is safe. */
static void *vcpu_leave(struct vmm_vcpu *vcpu)
{
    pthread_mutex_lock(&vcpu->vm->stop_lock);
    atomic_store(&vcpu->kickable, false);
    pthread_mutex_unlock(&vcpu->vm->stop_lock);
    return NULL;
}

/* An exit's access (a port or MMIO read's value, the rest of a string
 * instruction) is finished inside the next KVM_RUN: until then the
 * registers KVM reports are not the guest's. Before parking, one entry
 * with immediate_exit set completes it and runs no guest instruction, so
 * a parked vCPU's state is whole (what a snapshot saves). False when the
 * vCPU must stop. */
static bool vcpu_settle(struct vmm_vcpu *vcpu)
{
    __atomic_store_n(&vcpu->run->immediate_exit, 1, __ATOMIC_SEQ_CST);
    while (ioctl(vcpu->fd, KVM_RUN, 0) == 0)
        if (!vmm_vcpu_handle_exit(vcpu))
            return false;
    if (errno == EINTR || errno == EAGAIN)
        return true;
    vmm_vm_request_stop(vcpu->vm, VMM_STOP_RUN_ERROR, (int)vcpu->index, (uint64_t)errno);
    return false;
}

/* When this VM's vCPUs outnumber the CPUs the VMM may run on, they take
 * turns on them, and a vCPU woken there (a lock handed over, an IPI, a
 * timer) preempted the one running: often a lock holder, whose waiters
 * then spun out their slices (lock-holder preemption; a host with
 * pause-loop exiting only shortens the spinning). As SCHED_BATCH a vCPU's
 * wakeup waits until the running vCPU halts or the tick says, as a device
 * thread's does. Measured in the lab (Linux, 4 vCPUs on one CPU): the
 * guest's own boot time 7.3-7.8 s before, 6.1-6.3 s after. vCPUs that
 * each have a CPU are left alone, and so is a policy the VMM was started
 * with (real-time, idle, batch). A hint: a refusal changes nothing. */
static void vcpu_share_cpus(const struct vmm_vcpu *vcpu)
{
    cpu_set_t allowed;
    if (sched_getaffinity(0, sizeof(allowed), &allowed) < 0)
        return;
    if (atomic_load(&vcpu->vm->nvcpus) <= (unsigned)CPU_COUNT(&allowed) || sched_getscheduler(0) != SCHED_OTHER)
        return;
    struct sched_param none = { 0 };
    (void)sched_setscheduler(0, SCHED_BATCH, &none);
}

static void *vcpu_thread(void *arg)
{
    struct vmm_vcpu *vcpu = arg;
    struct vmm_vm *vm = vcpu->vm;
    char name[16];
    snprintf(name, sizeof(name), "vcpu%u", vcpu->index);
    pthread_setname_np(pthread_self(), name);
    vcpu_unblock_signals();
    vcpu->self = pthread_self();
    atomic_store(&vcpu->kickable, true);
    vcpu_share_cpus(vcpu);

    if (vm->thread_init) {
        int ret = vm->thread_init(vm->thread_init_opaque, vcpu->index);
        if (ret < 0) {
            vmm_vm_request_stop(vm, VMM_STOP_VCPU_SETUP, (int)vcpu->index, (uint64_t)-ret);
            return vcpu_leave(vcpu);
        }
    }

    while (!atomic_load(&vm->stopping) && !atomic_load(&vcpu->leaving)) {
        if (atomic_load(&vm->pausing)) {
            if (!vcpu_settle(vcpu))
                break;
            vmm_vcpu_park(vcpu);
            continue;
        }
        if (ioctl(vcpu->fd, KVM_RUN, 0) < 0) {
            int err = errno;
            if (err == EINTR || err == EAGAIN)
                continue;
            vmm_vm_request_stop(vm, VMM_STOP_RUN_ERROR, (int)vcpu->index, (uint64_t)err);
            break;
        }
        if (!vmm_vcpu_handle_exit(vcpu))
            break;
    }
    return vcpu_leave(vcpu);
}

/* Threads inherit a full mask: process signals (SIGTERM, SIGINT...) go
 * to the VMM thread's signalfd, never to a vCPU. */
static int vcpu_start(struct vmm_vcpu *vcpu)
{
    int ret = vmm_thread_start(&vcpu->thread, vcpu_thread, vcpu);
    if (ret == 0) {
        vcpu->started = true;
        vcpu->vm->running++;
    }
    return ret;
}

static void vcpu_join(struct vmm_vcpu *vcpu)
{
    if (!vcpu->started)
        return;
    pthread_join(vcpu->thread, NULL);
    vcpu->started = false;
    vcpu->vm->running--;
}

int vmm_vcpus_start(struct vmm_vm *vm, vmm_vcpu_thread_init_fn init, void *opaque)
{
    vm->thread_init = init;
    vm->thread_init_opaque = opaque;
    int ret = 0;
    for (unsigned i = 0; i < atomic_load(&vm->nvcpus) && ret == 0; i++)
        ret = vcpu_start(&vm->vcpus[i]);
    if (ret < 0)
        vmm_vm_request_stop(vm, VMM_STOP_VCPU_SETUP, -1, (uint64_t)-ret);
    return ret;
}

void vmm_vcpus_join(struct vmm_vm *vm)
{
    for (unsigned i = 0; i < atomic_load(&vm->nvcpus); i++)
        vcpu_join(&vm->vcpus[i]);
}

int vmm_vcpu_plug(struct vmm_vm *vm, unsigned index)
{
    if (index >= vm->max_vcpus || !vm->vcpus)
        return -EINVAL;
    if (atomic_load(&vm->stopping))
        return -ECANCELED;
    if (index >= atomic_load(&vm->nvcpus)) {
        int ret = vcpus_add(vm, index + 1);
        if (ret < 0)
            return ret;
    }
    struct vmm_vcpu *vcpu = &vm->vcpus[index];
    if (vcpu->started)
        return 0;
    /* An unplug left its exit request behind. */
    atomic_store(&vcpu->leaving, false);
    __atomic_store_n(&vcpu->run->immediate_exit, 0, __ATOMIC_SEQ_CST);
    return vcpu_start(vcpu);
}

void vmm_vcpu_unplug(struct vmm_vm *vm, unsigned index)
{
    if (index >= atomic_load(&vm->nvcpus) || !vm->vcpus[index].started)
        return;
    struct vmm_vcpu *vcpu = &vm->vcpus[index];
    atomic_store(&vcpu->leaving, true);
    __atomic_store_n(&vcpu->run->immediate_exit, 1, __ATOMIC_SEQ_CST);
    /* The VMM thread is the only joiner: the thread is alive or exited,
     * never joined, while this kick is aimed. */
    if (atomic_load(&vcpu->kickable))
        pthread_kill(vcpu->self, vmm_kick_signal());
    vmm_vcpus_unpark(vm);
    vcpu_join(vcpu);
}
