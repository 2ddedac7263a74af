/* ACPI PCI hotplug for bus 0, Cloud Hypervisor's protocol: the DSDT's
 * PSCN method reads which slots gained a device (PCIU) and which the VMM
 * wants back (PCID), and notifies the guest's slot objects; the guest
 * hands a slot back through its _EJ0, a write of the slot's bit to B0EJ.
 * The VMM thread announces, a vCPU thread reads and ejects: the eject is
 * recorded and signalled on an eventfd for the VMM thread to act on. */
#ifndef VMM_PCI_HOTPLUG_H
#define VMM_PCI_HOTPLUG_H

#include <stdbool.h>
#include <stdint.h>

#define VMM_PCI_HOTPLUG_PORT 0xae00
#define VMM_PCI_HOTPLUG_LEN 12
/* Registers, 32 bits each, one bit per slot. */
#define VMM_PCI_HOTPLUG_PCIU 0 /* read: slots with a new device (read clears) */
#define VMM_PCI_HOTPLUG_PCID 4 /* read: slots whose device the VMM removes (read clears) */
#define VMM_PCI_HOTPLUG_B0EJ 8 /* write: slots the guest has let go */
/* The GED bit that makes the guest run PSCN (vmm_ged.h). */
#define VMM_GED_PCI_HOTPLUG 0x04

struct vmm_pci_hotplug;

/* `eject_fd`: an eventfd the VMM thread watches; it stays the caller's. */
int vmm_pci_hotplug_create(int eject_fd, struct vmm_pci_hotplug **out);
void vmm_pci_hotplug_destroy(struct vmm_pci_hotplug *hp);
/* VMM thread: the device in `slot` arrived (true) or is asked back (false). */
void vmm_pci_hotplug_announce(struct vmm_pci_hotplug *hp, unsigned slot, bool arrived);
/* Takes back an arrival the guest was not notified of (a hotplug undone). */
void vmm_pci_hotplug_withdraw(struct vmm_pci_hotplug *hp, unsigned slot);
/* VMM thread: the slots the guest ejected since the last call. */
uint32_t vmm_pci_hotplug_take_ejected(struct vmm_pci_hotplug *hp);
/* The PIO handler for the registers; `opaque` is the controller. */
void vmm_pci_hotplug_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t size, bool is_write);

#endif
