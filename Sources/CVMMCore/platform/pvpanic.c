/* The pvpanic I/O port: see vmm_pvpanic.h. */
#include <string.h>

#include "platform/vmm_pvpanic.h"
#include "vm/vmm_vm.h"

void vmm_pvpanic_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t size,
                    bool is_write)
{
    (void)offset;
    if (!is_write) {
        memset(data, 0, size);
        data[0] = VMM_PVPANIC_PANICKED | VMM_PVPANIC_CRASH_LOADED;
        return;
    }
    if (data[0] & VMM_PVPANIC_PANICKED)
        vmm_vm_request_stop(opaque, VMM_STOP_GUEST_PANIC, -1, data[0]);
}
