/* ACPI CPU hotplug registers, one byte per vCPU so no selector is shared
 * between the guest's CPUs (Cloud Hypervisor selects one CPU at a time
 * under an AML mutex; these need none). The DSDT's processor objects read
 * their _STA from the status byte and eject by writing it; its CSCN method
 * reads each event byte (read clears) and notifies the processor object.
 * The VMM thread announces, a vCPU thread reads and ejects: the eject
 * clears the vCPU's presence at once (the guest reads _STA right after
 * _EJ0) and is signalled on an eventfd for the VMM thread to act on. */
#ifndef VMM_CPU_HOTPLUG_H
#define VMM_CPU_HOTPLUG_H

#include <stdbool.h>
#include <stdint.h>

#define VMM_CPU_HOTPLUG_PORT 0xaf00
#define VMM_CPU_HOTPLUG_LEN 0x200
#define VMM_CPU_HOTPLUG_MAX 256
/* Status byte of vCPU N at PORT + N: read, its _STA (0x0f present, 0
 * absent); write VMM_CPU_HOTPLUG_EJECT, the guest lets it go. */
#define VMM_CPU_HOTPLUG_STATUS 0x000
#define VMM_CPU_HOTPLUG_PRESENT 0x0f
#define VMM_CPU_HOTPLUG_EJECT 0x01
/* Event byte of vCPU N at PORT + 0x100 + N, read clears. */
#define VMM_CPU_HOTPLUG_EVENTS 0x100
#define VMM_CPU_HOTPLUG_INSERTED 0x01 /* notify 1: check the device */
#define VMM_CPU_HOTPLUG_REMOVING 0x02 /* notify 3: eject request */
/* The GED bit that makes the guest run CSCN (vmm_ged.h). */
#define VMM_GED_CPU_HOTPLUG 0x01

struct vmm_cpu_hotplug;

/* `present` vCPUs (0 … present-1) at boot; `eject_fd`: an eventfd the VMM
 * thread watches, which stays the caller's. */
int vmm_cpu_hotplug_create(unsigned present, int eject_fd, struct vmm_cpu_hotplug **out);
void vmm_cpu_hotplug_destroy(struct vmm_cpu_hotplug *hp);
/* VMM thread: vCPU `index` arrived (present from now on), or the VMM asks
 * for it back (present until the guest ejects it). */
void vmm_cpu_hotplug_announce(struct vmm_cpu_hotplug *hp, unsigned index, bool arrived);
/* Takes back the arrival of a vCPU the guest was not notified of. */
void vmm_cpu_hotplug_withdraw(struct vmm_cpu_hotplug *hp, unsigned index);
bool vmm_cpu_hotplug_present(const struct vmm_cpu_hotplug *hp, unsigned index);
/* The PIO handler for the registers; `opaque` is the controller. */
void vmm_cpu_hotplug_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t size, bool is_write);

#endif
