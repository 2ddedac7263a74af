/* The ACPI Generic Event Device (ACPI0013) through which the VMM tells the
 * guest that something happened, as Cloud Hypervisor does: it sets the
 * event's bit in a one-byte register and pulses the GED's interrupt; the
 * guest's _EVT method reads (and so clears) the register and acts. */
#ifndef VMM_GED_H
#define VMM_GED_H

#include <stdbool.h>
#include <stdint.h>

/* The register's I/O port and the edge-triggered GSI (a free ISA line). */
#define VMM_GED_PORT 0x6c0
#define VMM_GED_GSI 5
/* Bits in the register: Cloud Hypervisor's numbering. */
#define VMM_GED_POWER_BUTTON 0x08

struct vmm_vm;
struct vmm_irq;
struct vmm_ged;

/* `irq` (VMM_GED_GSI's line) stays the caller's and outlives the GED. */
int vmm_ged_create(const struct vmm_irq *irq, struct vmm_ged **out);
void vmm_ged_destroy(struct vmm_ged *ged);
/* Any thread: records `events` and interrupts the guest. */
int vmm_ged_notify(struct vmm_ged *ged, uint8_t events);
/* The events the guest has not read yet (a snapshot's). */
uint8_t vmm_ged_pending(struct vmm_ged *ged);
/* The PIO handler for VMM_GED_PORT; `opaque` is the GED. */
void vmm_ged_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t size, bool is_write);

#endif
