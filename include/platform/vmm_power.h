/* The guest's ways to power off and reset, as Cloud Hypervisor offers them
 * on x86_64: the ACPI sleep control register at port 0x600 (S5 = power off,
 * 1 = reset, matching the FADT's reset register) and the i8042 reset line. */
#ifndef VMM_POWER_H
#define VMM_POWER_H

#include <stdbool.h>
#include <stdint.h>

#define VMM_ACPI_SLEEP_PORT 0x600
/* Written to the sleep port (the FADT's reset register) to reset. */
#define VMM_ACPI_RESET_VALUE 1
#define VMM_ACPI_SLEEP_LEN 8
#define VMM_I8042_CMD_PORT 0x64

/* `opaque` is the struct vmm_vm to stop. */
void vmm_acpi_sleep_io(void *opaque, uint64_t offset, uint8_t *data,
                       uint32_t size, bool is_write);
void vmm_i8042_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t size,
                  bool is_write);

#endif
