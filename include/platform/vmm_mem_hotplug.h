/* ACPI memory hotplug registers. Each hot-added range of guest RAM takes a
 * slot, one ACPI memory device (PNP0C80) in the DSDT, whose _CRS reads the
 * slot's base and length (two 32-bit halves each) and whose _STA reads its
 * status byte; the MSCN method reads each slot's event byte (read clears)
 * and notifies the device. Hot-removal does not exist (nor in Cloud
 * Hypervisor's ACPI hotplug): a slot, once filled, stays for the boot. */
#ifndef VMM_MEM_HOTPLUG_H
#define VMM_MEM_HOTPLUG_H

#include <stdbool.h>
#include <stdint.h>

#define VMM_MEM_HOTPLUG_PORT 0xa000
#define VMM_MEM_HOTPLUG_LEN 0x120
#define VMM_MEM_HOTPLUG_SLOTS 16
/* Slot N's registers at PORT + 16 * N, 32 bits each, read-only. */
#define VMM_MEM_HOTPLUG_BASE_LO 0x0
#define VMM_MEM_HOTPLUG_BASE_HI 0x4
#define VMM_MEM_HOTPLUG_SIZE_LO 0x8
#define VMM_MEM_HOTPLUG_SIZE_HI 0xc
/* Slot N's status byte at PORT + 0x100 + N: its _STA (0x0f or 0). */
#define VMM_MEM_HOTPLUG_STATUS 0x100
#define VMM_MEM_HOTPLUG_PRESENT 0x0f
/* Slot N's event byte at PORT + 0x110 + N, read clears. */
#define VMM_MEM_HOTPLUG_EVENTS 0x110
#define VMM_MEM_HOTPLUG_INSERTED 0x01 /* notify 1: check the device */
/* The GED bit that makes the guest run MSCN (vmm_ged.h), Cloud Hypervisor's. */
#define VMM_GED_MEMORY_HOTPLUG 0x02

struct vmm_mem_hotplug;

int vmm_mem_hotplug_create(struct vmm_mem_hotplug **out);
void vmm_mem_hotplug_destroy(struct vmm_mem_hotplug *hp);
/* VMM thread: guest RAM [base, base+size) is in `slot` from now on.
 * -EBUSY if the slot is taken. */
int vmm_mem_hotplug_announce(struct vmm_mem_hotplug *hp, unsigned slot, uint64_t base, uint64_t size);
/* Empties a slot whose arrival the guest was not notified of. */
void vmm_mem_hotplug_withdraw(struct vmm_mem_hotplug *hp, unsigned slot);
/* The PIO handler for the registers; `opaque` is the controller. */
void vmm_mem_hotplug_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t size, bool is_write);

#endif
