/* The VM's KVM interrupt routing table, in one place.
 *
 * KVM_SET_GSI_ROUTING replaces the whole table, so one owner keeps the
 * legacy IOAPIC/PIC pins and every MSI route together and commits them
 * atomically. MSI routes are allocated per vector; a device's interrupt is
 * an eventfd bound to its GSI with KVM_IRQFD (vmm_irq.h), so delivery never
 * passes through the VMM. Safe from any thread (MSI-X table writes arrive on
 * vCPU threads). */
#ifndef VMM_GSI_H
#define VMM_GSI_H

#include <stdint.h>

struct vmm_vm;

/* The first GSI handed out for MSI routes: 0-23 are the IOAPIC's pins. */
#define VMM_GSI_MSI_BASE 24

/* Reserves a GSI with no route yet; -ENOSPC when the table is full. */
int vmm_gsi_alloc(struct vmm_vm *vm, uint32_t *out);
/* Routes `gsi` to an MSI message and commits the table. */
int vmm_gsi_set_msi(struct vmm_vm *vm, uint32_t gsi, uint64_t address, uint32_t data);
/* Drops its route (if any), commits, and makes the GSI free again. */
void vmm_gsi_free(struct vmm_vm *vm, uint32_t gsi);

#endif
