/* ACPI PCI hotplug registers: see vmm_pci_hotplug.h. Three atomic bitmaps
 * per segment; a guest can only clear what it reads and add slots to the
 * eject set, which the VMM thread checks against what it asked back. */
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "platform/vmm_pci_hotplug.h"

struct segment_slots {
    atomic_uint up, down, ejected;
};

struct vmm_pci_hotplug {
    int eject_fd;
    unsigned segments;
    /* PSEG: which segment PCIU and PCID read. The guest's PSCN selects and
     * reads in one method, which ACPI runs one at a time. */
    atomic_uint selected;
    struct segment_slots slots[];
};

int vmm_pci_hotplug_create(int eject_fd, unsigned segments, struct vmm_pci_hotplug **out)
{
    if (segments == 0 || segments > 256)
        return -EINVAL;
    struct vmm_pci_hotplug *hp = calloc(1, sizeof(*hp) + segments * sizeof(hp->slots[0]));
    if (!hp)
        return -ENOMEM;
    hp->eject_fd = eject_fd;
    hp->segments = segments;
    *out = hp;
    return 0;
}

void vmm_pci_hotplug_destroy(struct vmm_pci_hotplug *hp) { free(hp); }

void vmm_pci_hotplug_announce(struct vmm_pci_hotplug *hp, unsigned segment, unsigned slot, bool arrived)
{
    if (segment >= hp->segments || slot >= 32)
        return;
    atomic_fetch_or(arrived ? &hp->slots[segment].up : &hp->slots[segment].down, 1u << slot);
}

void vmm_pci_hotplug_withdraw(struct vmm_pci_hotplug *hp, unsigned segment, unsigned slot)
{
    if (segment < hp->segments && slot < 32)
        atomic_fetch_and(&hp->slots[segment].up, ~(1u << slot));
}

uint32_t vmm_pci_hotplug_take_ejected(struct vmm_pci_hotplug *hp, unsigned segment)
{
    return segment < hp->segments ? atomic_exchange(&hp->slots[segment].ejected, 0) : 0;
}

bool vmm_pci_hotplug_busy(struct vmm_pci_hotplug *hp)
{
    for (unsigned s = 0; s < hp->segments; s++)
        if (atomic_load(&hp->slots[s].up) | atomic_load(&hp->slots[s].down) | atomic_load(&hp->slots[s].ejected))
            return true;
    return false;
}

static void eject(struct vmm_pci_hotplug *hp, uint32_t value)
{
    unsigned segment = value >> 8, slot = value & 0xff;
    /* Slot 0 is the host bridge: never the guest's to eject. */
    if (segment >= hp->segments || slot == 0 || slot >= 32)
        return;
    atomic_fetch_or(&hp->slots[segment].ejected, 1u << slot);
    uint64_t one = 1;
    while (write(hp->eject_fd, &one, sizeof(one)) < 0 && errno == EINTR)
        ;
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
        memcpy(&value, data, 4);
        if (offset == VMM_PCI_HOTPLUG_PCEJ)
            eject(hp, value);
        else if (offset == VMM_PCI_HOTPLUG_PSEG)
            atomic_store(&hp->selected, value);
        return;
    }
    unsigned segment = atomic_load(&hp->selected);
    if (segment < hp->segments && offset == VMM_PCI_HOTPLUG_PCIU)
        value = atomic_exchange(&hp->slots[segment].up, 0);
    else if (segment < hp->segments && offset == VMM_PCI_HOTPLUG_PCID)
        value = atomic_exchange(&hp->slots[segment].down, 0);
    memcpy(data, &value, 4);
}
