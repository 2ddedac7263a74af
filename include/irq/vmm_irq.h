/* Interrupt lines as GSI routes fed by eventfds (KVM irqfd): a device
 * signals its line by writing the eventfd, from any thread, with no exit. */
#ifndef VMM_IRQ_H
#define VMM_IRQ_H

#include <stdint.h>

struct vmm_vm;

struct vmm_irq {
    int eventfd;
    uint32_t gsi;
};

/* Creates an eventfd and attaches it to `gsi` of the in-kernel irqchip. */
int vmm_irq_create(struct vmm_vm *vm, uint32_t gsi, struct vmm_irq *out);
/* Detaches and closes. */
void vmm_irq_release(struct vmm_vm *vm, struct vmm_irq *irq);
/* Attaches or detaches an existing eventfd: while detached, signals only
 * count up in the eventfd, and KVM injects them when it is attached again. */
int vmm_irq_attach(struct vmm_vm *vm, const struct vmm_irq *irq);
void vmm_irq_detach(struct vmm_vm *vm, const struct vmm_irq *irq);
/* Edge: one pulse on the line. */
int vmm_irq_trigger(const struct vmm_irq *irq);

#endif
