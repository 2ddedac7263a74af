/* ACPI PCI hotplug registers: see vmm_pci_hotplug.h. Three atomic bitmaps;
 * a guest can only clear what it reads and add slots to the eject set,
 * which the VMM thread checks against what it asked back. */
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "platform/vmm_pci_hotplug.h"

struct vmm_pci_hotplug {
    int eject_fd;
    atomic_uint up, down, ejected;
};

int vmm_pci_hotplug_create(int eject_fd, struct vmm_pci_hotplug **out)
{
    struct vmm_pci_hotplug *hp = calloc(1, sizeof(*hp));
    if (!hp)
        return -ENOMEM;
    hp->eject_fd = eject_fd;
    *out = hp;
    return 0;
}

void vmm_pci_hotplug_destroy(struct vmm_pci_hotplug *hp) { free(hp); }

void vmm_pci_hotplug_announce(struct vmm_pci_hotplug *hp, unsigned slot, bool arrived)
{
    if (slot >= 32)
        return;
    atomic_fetch_or(arrived ? &hp->up : &hp->down, 1u << slot);
}

void vmm_pci_hotplug_withdraw(struct vmm_pci_hotplug *hp, unsigned slot)
{
    if (slot < 32)
        atomic_fetch_and(&hp->up, ~(1u << slot));
}

uint32_t vmm_pci_hotplug_take_ejected(struct vmm_pci_hotplug *hp)
{
    return atomic_exchange(&hp->ejected, 0);
}

void vmm_pci_hotplug_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t size, bool is_write)
{
    struct vmm_pci_hotplug *hp = opaque;
    /* Whole registers only (the DSDT's fields are DWordAcc). */
    if (size != 4 || offset % 4 || offset >= VMM_PCI_HOTPLUG_LEN) {
        if (!is_write)
            memset(data, 0, size);
        return;
    }
    uint32_t value = 0;
    if (is_write) {
        if (offset != VMM_PCI_HOTPLUG_B0EJ)
            return;
        memcpy(&value, data, 4);
        /* Slot 0 is the host bridge: never the guest's to eject. */
        value &= ~1u;
        if (!value)
            return;
        atomic_fetch_or(&hp->ejected, value);
        uint64_t one = 1;
        while (write(hp->eject_fd, &one, sizeof(one)) < 0 && errno == EINTR)
            ;
        return;
    }
    if (offset == VMM_PCI_HOTPLUG_PCIU)
        value = atomic_exchange(&hp->up, 0);
    else if (offset == VMM_PCI_HOTPLUG_PCID)
        value = atomic_exchange(&hp->down, 0);
    memcpy(data, &value, 4);
}
