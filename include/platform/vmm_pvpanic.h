/* QEMU's pvpanic device as an ISA I/O port (ACPI _HID QEMU0001, the port
 * QEMU uses), which Linux's pvpanic-mmio driver binds to: the guest kernel
 * writes "panicked" to it from its panic notifier, so the VMM can end the
 * run with an error instead of leaving a dead guest running. */
#ifndef VMM_PVPANIC_H
#define VMM_PVPANIC_H

#include <stdbool.h>
#include <stdint.h>

#define VMM_PVPANIC_PORT 0x505
#define VMM_PVPANIC_PANICKED (1u << 0)
#define VMM_PVPANIC_CRASH_LOADED (1u << 1)

/* `opaque` is the struct vmm_vm to stop. Reads give the events the device
 * takes; a write with PANICKED stops the VM with VMM_STOP_GUEST_PANIC.
 * CRASH_LOADED (a kdump kernel takes over) lets the guest run on. */
void vmm_pvpanic_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t size,
                    bool is_write);

#endif
