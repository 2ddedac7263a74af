/* Bus 0 of segment 0: the host bridge, slots, and the two ways to reach
 * configuration space: conf1 (address at 0xcf8, data at 0xcfc-0xcff) and
 * ECAM (MMCONFIG), which also reaches the 4 KiB extended space. */
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "pci/pci_dev.h"

#define CONF1_ENABLE 0x80000000u
/* Intel's host bridge ID, as Cloud Hypervisor presents it; class 06/00. */
#define HOST_BRIDGE_VENDOR 0x8086
#define HOST_BRIDGE_DEVICE 0x0d57
#define CLASS_HOST_BRIDGE 0x060000

struct vmm_pci_bus {
    struct vmm_pci_space space;
    uint64_t ecam_base;
    /* Readers on vCPU threads load slots without a lock; hotplug publishes
     * with a release store, which the acquire loads here pair with, and
     * takes a function out only with every vCPU parked. */
    _Atomic(struct vmm_pci_dev *) slots[VMM_PCI_SLOTS];
    struct vmm_pci_dev *host_bridge;
    /* conf1's address register: one per bus, as on hardware (Linux
     * serialises conf1 accesses with its own lock). */
    _Atomic uint32_t conf1_address;
    bool conf1_registered, ecam_registered;
};

int vmm_pci_bus_create(const struct vmm_pci_space *space, uint64_t ecam_base, bool conf1, struct vmm_pci_bus **out)
{
    struct vmm_pci_bus *bus = calloc(1, sizeof(*bus));
    if (!bus)
        return -ENOMEM;
    bus->space = *space;
    bus->ecam_base = ecam_base;
    int ret = vmm_pci_dev_create(space, HOST_BRIDGE_VENDOR, HOST_BRIDGE_DEVICE, CLASS_HOST_BRIDGE, 0, 0, 0,
                                 NULL, NULL, &bus->host_bridge);
    if (ret < 0)
        goto error;
    atomic_store(&bus->slots[0], bus->host_bridge);
    if (conf1) {
        ret = vmm_bus_register(space->pio, VMM_PCI_CONF1_PORT, 8, vmm_pci_conf1_io, bus);
        if (ret < 0)
            goto error;
        bus->conf1_registered = true;
    }
    ret = vmm_bus_register(space->mmio, ecam_base, VMM_PCI_ECAM_SIZE, vmm_pci_ecam_io, bus);
    if (ret < 0)
        goto error;
    bus->ecam_registered = true;
    *out = bus;
    return 0;
error:
    vmm_pci_bus_destroy(bus);
    return ret;
}

void vmm_pci_bus_destroy(struct vmm_pci_bus *bus)
{
    if (!bus)
        return;
    if (bus->conf1_registered)
        vmm_bus_unregister(bus->space.pio, VMM_PCI_CONF1_PORT);
    if (bus->ecam_registered)
        vmm_bus_unregister(bus->space.mmio, bus->ecam_base);
    vmm_pci_dev_destroy(bus->host_bridge);
    free(bus);
}

int vmm_pci_bus_add(struct vmm_pci_bus *bus, unsigned slot, struct vmm_pci_dev *dev)
{
    if (slot == 0 || slot >= VMM_PCI_SLOTS || !dev)
        return -EINVAL;
    struct vmm_pci_dev *expected = NULL;
    return atomic_compare_exchange_strong(&bus->slots[slot], &expected, dev) ? 0 : -EEXIST;
}

struct vmm_pci_dev *vmm_pci_bus_remove(struct vmm_pci_bus *bus, unsigned slot)
{
    if (slot == 0 || slot >= VMM_PCI_SLOTS)
        return NULL;
    return atomic_exchange(&bus->slots[slot], NULL);
}

/* Function 0 of bus 0 only: other buses and functions read as absent. */
static void config_access(struct vmm_pci_bus *bus, unsigned busno, unsigned slot, unsigned fn,
                          uint32_t reg, uint8_t *data, uint32_t size, bool is_write)
{
    struct vmm_pci_dev *dev = NULL;
    if (busno == 0 && fn == 0 && slot < VMM_PCI_SLOTS)
        dev = atomic_load_explicit(&bus->slots[slot], memory_order_acquire);
    if (dev)
        vmm_pci_dev_config_access(dev, reg, data, size, is_write);
    else if (!is_write)
        memset(data, 0xff, size);
}

void vmm_pci_conf1_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t size, bool is_write)
{
    struct vmm_pci_bus *bus = opaque;
    if (offset < 4) {
        /* The address register takes whole dwords only; byte accesses to
         * 0xcf8-0xcfb belong to other legacy uses and read as nothing. */
        if (offset != 0 || size != 4) {
            if (!is_write)
                memset(data, 0xff, size);
            return;
        }
        if (is_write) {
            uint32_t v = data[0] | data[1] << 8 | data[2] << 16 | (uint32_t)data[3] << 24;
            atomic_store(&bus->conf1_address, v);
        } else {
            uint32_t v = atomic_load(&bus->conf1_address);
            memcpy(data, &v, 4);
        }
        return;
    }
    uint32_t addr = atomic_load(&bus->conf1_address);
    uint32_t reg = (addr & 0xfc) + (uint32_t)(offset - 4);
    if (!(addr & CONF1_ENABLE) || reg + size > 0x100) {
        if (!is_write)
            memset(data, 0xff, size);
        return;
    }
    config_access(bus, (addr >> 16) & 0xff, (addr >> 11) & 0x1f, (addr >> 8) & 0x7, reg, data, size,
                  is_write);
}

void vmm_pci_ecam_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t size, bool is_write)
{
    uint32_t reg = offset & 0xfff;
    /* Accesses must not cross a register: naturally aligned 1, 2 or 4 bytes. */
    if ((size != 1 && size != 2 && size != 4) || (reg & (size - 1))) {
        if (!is_write)
            memset(data, 0xff, size);
        return;
    }
    config_access(opaque, (unsigned)(offset >> 20) & 0xff, (unsigned)(offset >> 15) & 0x1f,
                  (unsigned)(offset >> 12) & 0x7, reg, data, size, is_write);
}
