/* vCPU creation and the threads that run them. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/mman.h>

#include "vmm_vcpu.h"
#include "vm_internal.h"

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

int vmm_vcpus_create(struct vmm_vm *vm, unsigned count)
{
    if (count == 0 || vm->vcpus)
        return -EINVAL;
    int max = ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_MAX_VCPUS);
    if (max <= 0)
        max = ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_NR_VCPUS);
    if (max > 0 && count > (unsigned)max)
        return -E2BIG;
    vm->vcpus = calloc(count, sizeof(*vm->vcpus));
    if (!vm->vcpus)
        return -ENOMEM;
    for (unsigned i = 0; i < count; i++)
        vm->vcpus[i] = (struct vmm_vcpu){ .vm = vm, .index = i, .fd = -1 };
    vm->nvcpus = count;

    struct kvm_cpuid2 *supported = NULL;
    int ret = vmm_cpuid_supported(vm, &supported);
    for (unsigned i = 0; ret == 0 && i < count; i++)
        ret = vcpu_create(&vm->vcpus[i], supported);
    free(supported);
    return ret;
}

unsigned vmm_vcpu_count(const struct vmm_vm *vm) { return vm->nvcpus; }

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

    if (vm->thread_init) {
        int ret = vm->thread_init(vm->thread_init_opaque, vcpu->index);
        if (ret < 0) {
            vmm_vm_request_stop(vm, VMM_STOP_VCPU_SETUP, (int)vcpu->index, (uint64_t)-ret);
            return NULL;
        }
    }

    while (!atomic_load(&vm->stopping)) {
        if (atomic_load(&vm->pausing)) {
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
    return NULL;
}

int vmm_vcpus_start(struct vmm_vm *vm, vmm_vcpu_thread_init_fn init, void *opaque)
{
    vm->thread_init = init;
    vm->thread_init_opaque = opaque;

    /* Threads inherit a full mask: process signals (SIGTERM, SIGINT...) go
     * to the VMM thread's signalfd, never to a vCPU. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    int ret = 0;
    for (unsigned i = 0; i < vm->nvcpus && ret == 0; i++) {
        struct vmm_vcpu *vcpu = &vm->vcpus[i];
        ret = -pthread_create(&vcpu->thread, NULL, vcpu_thread, vcpu);
        if (ret == 0)
            vcpu->started = true;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (ret < 0)
        vmm_vm_request_stop(vm, VMM_STOP_VCPU_SETUP, -1, (uint64_t)-ret);
    return ret;
}

void vmm_vcpus_join(struct vmm_vm *vm)
{
    for (unsigned i = 0; i < vm->nvcpus; i++) {
        struct vmm_vcpu *vcpu = &vm->vcpus[i];
        if (vcpu->started) {
            pthread_join(vcpu->thread, NULL);
            vcpu->started = false;
            atomic_store(&vcpu->kickable, false);
        }
    }
}
