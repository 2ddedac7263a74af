/* ACPI PCI hotplug for bus 0 of every PCI segment, after Cloud Hypervisor's
 * protocol: the DSDT's PSCN method selects each segment (PSEG), reads which
 * slots gained a device (PCIU) and which the VMM wants back (PCID), and
 * notifies that segment's slot objects; the guest hands a slot back through
 * its _EJ0, one write of (segment << 8 | slot) to PCEJ, which needs no
 * selection (an eject never races PSCN's select-then-read).
 * The VMM thread announces, a vCPU thread reads and ejects: the eject is
 * recorded and signalled on an eventfd for the VMM thread to act on. */
#ifndef VMM_PCI_HOTPLUG_H
#define VMM_PCI_HOTPLUG_H

#include <stdbool.h>
#include <stdint.h>

#define VMM_PCI_HOTPLUG_PORT 0xae00
#define VMM_PCI_HOTPLUG_LEN 16
/* Registers, 32 bits each. */
#define VMM_PCI_HOTPLUG_PCIU 0  /* read: the selected segment's slots with a new device (read clears) */
#define VMM_PCI_HOTPLUG_PCID 4  /* read: its slots whose device the VMM removes (read clears) */
#define VMM_PCI_HOTPLUG_PCEJ 8  /* write: segment << 8 | slot, a slot the guest has let go */
#define VMM_PCI_HOTPLUG_PSEG 12 /* write: the segment PCIU and PCID read */
/* The GED bit that makes the guest run PSCN (vmm_ged.h). */
#define VMM_GED_PCI_HOTPLUG 0x04

struct vmm_pci_hotplug;

/* `eject_fd`: an eventfd the VMM thread watches; it stays the caller's. */
int vmm_pci_hotplug_create(int eject_fd, unsigned segments, struct vmm_pci_hotplug **out);
void vmm_pci_hotplug_destroy(struct vmm_pci_hotplug *hp);
/* VMM thread: the device in `slot` of `segment` arrived (true) or is asked back (false). */
void vmm_pci_hotplug_announce(struct vmm_pci_hotplug *hp, unsigned segment, unsigned slot, bool arrived);
/* Takes back an arrival the guest was not notified of (a hotplug undone). */
void vmm_pci_hotplug_withdraw(struct vmm_pci_hotplug *hp, unsigned segment, unsigned slot);
/* VMM thread: the slots of `segment` the guest ejected since the last call. */
uint32_t vmm_pci_hotplug_take_ejected(struct vmm_pci_hotplug *hp, unsigned segment);
/* The PIO handler for the registers; `opaque` is the controller. */
/* Whether any slot's arrival, removal request or eject waits to be taken
 * (by the guest, or by the VMM thread): a snapshot would lose it. */
bool vmm_pci_hotplug_busy(struct vmm_pci_hotplug *hp);
void vmm_pci_hotplug_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t size, bool is_write);

#endif
