/* Interrupt lines: an eventfd bound to a GSI with KVM_IRQFD. */
#include <errno.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "irq/vmm_irq.h"
#include "vm/vm_internal.h"

int vmm_irq_attach(struct vmm_vm *vm, const struct vmm_irq *irq)
{
    struct kvm_irqfd irqfd = { .fd = (uint32_t)irq->eventfd, .gsi = irq->gsi };
    return ioctl(vm->vm_fd, KVM_IRQFD, &irqfd) < 0 ? -errno : 0;
}

void vmm_irq_detach(struct vmm_vm *vm, const struct vmm_irq *irq)
{
    struct kvm_irqfd irqfd = { .fd = (uint32_t)irq->eventfd, .gsi = irq->gsi,
                               .flags = KVM_IRQFD_FLAG_DEASSIGN };
    ioctl(vm->vm_fd, KVM_IRQFD, &irqfd);
}

int vmm_irq_create(struct vmm_vm *vm, uint32_t gsi, struct vmm_irq *out)
{
    int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (fd < 0)
        return -errno;
    struct vmm_irq irq = { .eventfd = fd, .gsi = gsi };
    int ret = vmm_irq_attach(vm, &irq);
    if (ret < 0) {
        close(fd);
        return ret;
    }
    *out = irq;
    return 0;
}

void vmm_irq_release(struct vmm_vm *vm, struct vmm_irq *irq)
{
    if (irq->eventfd < 0)
        return;
    vmm_irq_detach(vm, irq);
    close(irq->eventfd);
    irq->eventfd = -1;
}

int vmm_irq_trigger(const struct vmm_irq *irq)
{
    uint64_t one = 1;
    for (;;) {
        if (write(irq->eventfd, &one, sizeof(one)) == sizeof(one))
            return 0;
        /* EAGAIN: the counter is saturated, so the line is already pending. */
        if (errno == EAGAIN)
            return 0;
        if (errno != EINTR)
            return -errno;
    }
}
