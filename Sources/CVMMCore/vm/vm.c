/* VM creation and teardown, and the stop protocol every thread shares. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "common/sparse.h"
#include "vm/vmm_bus.h"
#include "vm/vmm_vm.h"
#include "vm/vm_internal.h"
#include "vm/vmm_memory.h"

/* Above RAM in the 32-bit hole, where Cloud Hypervisor puts it too; needed
 * on Intel hosts, where KVM keeps three pages for real-mode emulation. */
#define VMM_TSS_ADDR 0xfffbd000ul

static const struct {
    int cap;
    const char *what;
} required_caps[] = {
    { KVM_CAP_USER_MEMORY, "KVM_CAP_USER_MEMORY" },
    { KVM_CAP_IRQCHIP, "KVM_CAP_IRQCHIP" },
    { KVM_CAP_PIT2, "KVM_CAP_PIT2" },
    { KVM_CAP_IRQFD, "KVM_CAP_IRQFD" },
    { KVM_CAP_IOEVENTFD, "KVM_CAP_IOEVENTFD" },
    { KVM_CAP_IRQ_ROUTING, "KVM_CAP_IRQ_ROUTING" },
    { KVM_CAP_EXT_CPUID, "KVM_CAP_EXT_CPUID" },
    { KVM_CAP_SET_TSS_ADDR, "KVM_CAP_SET_TSS_ADDR" },
    { KVM_CAP_IMMEDIATE_EXIT, "KVM_CAP_IMMEDIATE_EXIT" },
};

static int fail(struct vmm_error *err, const char *what, int code)
{
    if (err) {
        err->code = code;
        err->what = what;
    }
    return code;
}

int vmm_kvm_open(int *out_fd, struct vmm_error *err)
{
    /* Here, before any seccomp filter, which would refuse sigaction. */
    int ret = vmm_kick_signal_install();
    if (ret < 0)
        return fail(err, "install the vCPU kick signal handler", ret);
    int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    if (fd < 0)
        return fail(err, "open /dev/kvm", -errno);
    int version = ioctl(fd, KVM_GET_API_VERSION, 0);
    if (version != KVM_API_VERSION) {
        ret = fail(err, "KVM_GET_API_VERSION is not 12", version < 0 ? -errno : -ENOTSUP);
        goto error;
    }
    for (size_t i = 0; i < sizeof(required_caps) / sizeof(required_caps[0]); i++) {
        if (ioctl(fd, KVM_CHECK_EXTENSION, required_caps[i].cap) <= 0) {
            ret = fail(err, required_caps[i].what, -ENOTSUP);
            goto error;
        }
    }
    *out_fd = fd;
    return 0;
error:
    close(fd);
    return ret;
}

static int vm_open(struct vmm_vm *vm, struct vmm_error *err)
{
    vm->run_mmap_size = ioctl(vm->kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
    if (vm->run_mmap_size < (int)sizeof(struct kvm_run))
        return fail(err, "KVM_GET_VCPU_MMAP_SIZE", vm->run_mmap_size < 0 ? -errno : -EINVAL);

    vm->vm_fd = ioctl(vm->kvm_fd, KVM_CREATE_VM, 0);
    if (vm->vm_fd < 0)
        return fail(err, "KVM_CREATE_VM", -errno);
    if (ioctl(vm->vm_fd, KVM_SET_TSS_ADDR, VMM_TSS_ADDR) < 0)
        return fail(err, "KVM_SET_TSS_ADDR", -errno);
    if (ioctl(vm->vm_fd, KVM_CREATE_IRQCHIP, 0) < 0)
        return fail(err, "KVM_CREATE_IRQCHIP", -errno);
    struct kvm_pit_config pit = { .flags = KVM_PIT_SPEAKER_DUMMY };
    if (ioctl(vm->vm_fd, KVM_CREATE_PIT2, &pit) < 0)
        return fail(err, "KVM_CREATE_PIT2", -errno);
    return 0;
}

int vmm_vm_create(int kvm_fd, struct vmm_vm **out, struct vmm_error *err)
{
    int ret;
    struct vmm_vm *vm = vmm_sparse_alloc(sizeof(*vm));
    if (!vm)
        return fail(err, "allocate the VM", -ENOMEM);
    vm->vm_fd = vm->stop_fd = vm->vfio_kvm_fd = -1;
    vm->kvm_fd = kvm_fd;
    pthread_mutex_init(&vm->stop_lock, NULL);
    pthread_mutex_init(&vm->pause_lock, NULL);
    pthread_cond_init(&vm->pause_cond, NULL);
    pthread_mutex_init(&vm->device_slots_lock, NULL);
    vm->stop.vcpu = -1;

    if ((ret = vm_open(vm, err)) < 0)
        goto error;
    if ((ret = vmm_gsi_routes_init(vm)) < 0) {
        fail(err, "allocate the interrupt routing table", ret);
        goto error;
    }
    vm->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (vm->stop_fd < 0) {
        ret = fail(err, "eventfd", -errno);
        goto error;
    }
    if ((ret = vmm_bus_create(&vm->pio)) < 0 || (ret = vmm_bus_create(&vm->mmio)) < 0) {
        fail(err, "allocate the buses", ret);
        goto error;
    }
    *out = vm;
    return 0;
error:
    vmm_vm_destroy(vm);
    return ret;
}

static void close_fd(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

void vmm_vm_destroy(struct vmm_vm *vm)
{
    if (!vm)
        return;
    vmm_vm_request_stop(vm, VMM_STOP_REQUESTED, -1, 0);
    vmm_vcpus_join(vm);
    /* Every entry: one whose creation failed half-way has an fd too. */
    for (unsigned i = 0; i < vm->max_vcpus; i++) {
        struct vmm_vcpu *vcpu = &vm->vcpus[i];
        if (vcpu->run)
            munmap(vcpu->run, (size_t)vm->run_mmap_size);
        close_fd(&vcpu->fd);
    }
    free(vm->vcpus);
    close_fd(&vm->vfio_kvm_fd);
    /* The VM fd goes first so KVM drops its memslots before the RAM is unmapped. */
    close_fd(&vm->vm_fd);
    for (unsigned i = 0; i < vm->nregions; i++) {
        vmm_memory_unmap(vm, vm->regions[i].hva, vm->regions[i].size);
        if (vm->regions[i].fd >= 0)
            close(vm->regions[i].fd);
    }
    close_fd(&vm->stop_fd);
    vmm_bus_destroy(vm->pio);
    vmm_bus_destroy(vm->mmio);
    vmm_gsi_routes_destroy(vm);
    vmm_dirty_log_destroy(vm);
    pthread_mutex_destroy(&vm->device_slots_lock);
    pthread_mutex_destroy(&vm->stop_lock);
    pthread_cond_destroy(&vm->pause_cond);
    pthread_mutex_destroy(&vm->pause_lock);
    vmm_sparse_free(vm);
}

int vmm_vm_fd(const struct vmm_vm *vm) { return vm->vm_fd; }
struct vmm_bus *vmm_vm_pio_bus(struct vmm_vm *vm) { return vm->pio; }
struct vmm_bus *vmm_vm_mmio_bus(struct vmm_vm *vm) { return vm->mmio; }
int vmm_vm_stop_eventfd(const struct vmm_vm *vm) { return vm->stop_fd; }

void vmm_vm_request_stop(struct vmm_vm *vm, enum vmm_stop_reason reason, int vcpu,
                         uint64_t detail)
{
    pthread_mutex_lock(&vm->stop_lock);
    bool first = !atomic_load(&vm->stopping);
    if (first) {
        vm->stop = (struct vmm_stop_info){ reason, vcpu, detail };
        atomic_store(&vm->stopping, true);
        /* immediate_exit covers a vCPU about to enter KVM_RUN; the signal
         * one already inside it. Every thread that can take the signal gets
         * it: one still starting sees `stopping` before its first KVM_RUN.
         * Under the lock, which a leaving thread takes: none is joined yet. */
        pthread_t self = pthread_self();
        for (unsigned i = 0; i < atomic_load(&vm->nvcpus); i++) {
            struct vmm_vcpu *v = &vm->vcpus[i];
            __atomic_store_n(&v->run->immediate_exit, 1, __ATOMIC_SEQ_CST);
            if (atomic_load(&v->kickable) && !pthread_equal(v->self, self))
                pthread_kill(v->self, vmm_kick_signal());
        }
    }
    pthread_mutex_unlock(&vm->stop_lock);
    if (!first)
        return;
    vmm_vcpus_unpark(vm);
    uint64_t one = 1;
    while (write(vm->stop_fd, &one, sizeof(one)) < 0 && errno == EINTR)
        ;
}

struct vmm_stop_info vmm_vm_stop_info(struct vmm_vm *vm)
{
    pthread_mutex_lock(&vm->stop_lock);
    struct vmm_stop_info info = vm->stop;
    pthread_mutex_unlock(&vm->stop_lock);
    return info;
}
