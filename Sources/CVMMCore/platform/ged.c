/* The ACPI Generic Event Device: see vmm_ged.h. The pending events are one
 * atomic byte: the VMM thread ORs bits in, a vCPU's read takes them all. */
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "platform/vmm_ged.h"
#include "irq/vmm_irq.h"

struct vmm_ged {
    const struct vmm_irq *irq;
    atomic_uchar pending;
};

int vmm_ged_create(const struct vmm_irq *irq, struct vmm_ged **out)
{
    struct vmm_ged *ged = calloc(1, sizeof(*ged));
    if (!ged)
        return -ENOMEM;
    ged->irq = irq;
    *out = ged;
    return 0;
}

void vmm_ged_destroy(struct vmm_ged *ged) { free(ged); }

int vmm_ged_notify(struct vmm_ged *ged, uint8_t events)
{
    atomic_fetch_or(&ged->pending, events);
    return vmm_irq_trigger(ged->irq);
}

uint8_t vmm_ged_pending(struct vmm_ged *ged) { return atomic_load(&ged->pending); }

void vmm_ged_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t size, bool is_write)
{
    struct vmm_ged *ged = opaque;
    /* Writes mean nothing (WriteAsZeros); reads wider than the byte see zeros above it. */
    if (is_write || size == 0)
        return;
    for (uint32_t i = 0; i < size; i++)
        data[i] = 0;
    if (offset == 0)
        data[0] = atomic_exchange(&ged->pending, 0);
}
