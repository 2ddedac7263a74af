/* Power-off and reset requests from the guest. */
#include <string.h>

#include "platform/vmm_power.h"
#include "vm/vmm_vm.h"

/* SLP_TYP = 5 (the S5 package in the DSDT) in bits 2-4, SLP_EN in bit 5. */
#define ACPI_SLEEP_S5 ((5u << 2) | (1u << 5))
#define I8042_CMD_RESET 0xfeu

void vmm_acpi_sleep_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t size,
                       bool is_write)
{
    (void)offset;
    if (!is_write) {
        memset(data, 0, size);
        return;
    }
    if (data[0] == ACPI_SLEEP_S5)
        vmm_vm_request_stop(opaque, VMM_STOP_POWEROFF, -1, 0);
    else if (data[0] == VMM_ACPI_RESET_VALUE)
        vmm_vm_request_stop(opaque, VMM_STOP_RESET, -1, 0);
}

void vmm_i8042_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t size,
                  bool is_write)
{
    (void)offset;
    if (!is_write) {
        /* Status: output buffer empty, input buffer empty. */
        memset(data, 0, size);
        return;
    }
    if (data[0] == I8042_CMD_RESET)
        vmm_vm_request_stop(opaque, VMM_STOP_RESET, -1, 0);
}
