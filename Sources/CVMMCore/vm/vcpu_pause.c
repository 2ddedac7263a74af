/* Pause and resume: vCPUs parked at the top of their run loop.
 *
 * A pause stores `pausing`, then sets each vCPU's immediate_exit and kicks
 * it; a vCPU checks `pausing` after clearing immediate_exit (seq_cst both
 * sides), so it either sees the pause or leaves KVM_RUN at once. */
#include <errno.h>
#include <sys/ioctl.h>
#include <time.h>

#include "vm/vm_internal.h"

static void set_immediate_exit(struct vmm_vcpu *vcpu, unsigned char value)
{
    if (vcpu->run)
        __atomic_store_n(&vcpu->run->immediate_exit, value, __ATOMIC_SEQ_CST);
}

void vmm_vcpu_park(struct vmm_vcpu *vcpu)
{
    struct vmm_vm *vm = vcpu->vm;
    pthread_mutex_lock(&vm->pause_lock);
    vm->parked++;
    pthread_cond_broadcast(&vm->pause_cond);
    while (atomic_load(&vm->pausing) && !atomic_load(&vm->stopping) && !atomic_load(&vcpu->leaving))
        pthread_cond_wait(&vm->pause_cond, &vm->pause_lock);
    vm->parked--;
    pthread_mutex_unlock(&vm->pause_lock);
    /* A stop's immediate_exit stays: it is stored after `stopping`, which
     * the run loop checks next. */
    if (!atomic_load(&vm->stopping))
        set_immediate_exit(vcpu, 0);
}

void vmm_vcpus_unpark(struct vmm_vm *vm)
{
    pthread_mutex_lock(&vm->pause_lock);
    pthread_cond_broadcast(&vm->pause_cond);
    pthread_mutex_unlock(&vm->pause_lock);
}

int vmm_vcpus_quiesce(struct vmm_vm *vm)
{
    atomic_store(&vm->pausing, true);
    pthread_t self = pthread_self();
    for (unsigned i = 0; i < atomic_load(&vm->nvcpus); i++) {
        struct vmm_vcpu *v = &vm->vcpus[i];
        set_immediate_exit(v, 1);
        if (atomic_load(&v->kickable) && !pthread_equal(v->self, self))
            pthread_kill(v->self, vmm_kick_signal());
    }

    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += 5;
    int ret = 0;
    pthread_mutex_lock(&vm->pause_lock);
    while (vm->parked < vm->running && !atomic_load(&vm->stopping) && ret == 0)
        ret = pthread_cond_timedwait(&vm->pause_cond, &vm->pause_lock, &deadline);
    bool all = vm->parked == vm->running;
    pthread_mutex_unlock(&vm->pause_lock);
    if (atomic_load(&vm->stopping))
        return -ECANCELED;
    return all ? 0 : -ETIMEDOUT;
}

void vmm_vcpus_release(struct vmm_vm *vm)
{
    pthread_mutex_lock(&vm->pause_lock);
    atomic_store(&vm->pausing, false);
    pthread_cond_broadcast(&vm->pause_cond);
    pthread_mutex_unlock(&vm->pause_lock);
}

int vmm_vm_pause(struct vmm_vm *vm)
{
    int ret = vmm_vcpus_quiesce(vm);
    if (ret < 0)
        return ret;
    /* Held, so the guest does not see the paused time pass at once and
     * take its own watchdogs for stalls. */
    if (ioctl(vm->vm_fd, KVM_GET_CLOCK, &vm->saved_clock) < 0)
        return -errno;
    return 0;
}

int vmm_vm_resume(struct vmm_vm *vm)
{
    int ret = 0;
    if (atomic_load(&vm->pausing) && vm->saved_clock.clock) {
        struct kvm_clock_data clock = { .clock = vm->saved_clock.clock };
        if (ioctl(vm->vm_fd, KVM_SET_CLOCK, &clock) < 0)
            ret = -errno;
        vm->saved_clock.clock = 0;
    }
    vmm_vcpus_release(vm);
    return ret;
}
