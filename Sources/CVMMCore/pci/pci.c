/* A PCI function's configuration space (type 0 header, capability list,
 * extended space) and its BARs' presence on the buses. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "pci/pci_dev.h"
#include "common/vmm_log.h"

#define CFG_VENDOR 0x00
#define CFG_COMMAND 0x04
#define CFG_STATUS 0x06
#define CFG_REVISION 0x08
#define CFG_CLASS 0x09
#define CFG_HEADER_TYPE 0x0e
#define CFG_BAR0 0x10
#define CFG_SUBSYS_VENDOR 0x2c
#define CFG_CAP_PTR 0x34
#define CFG_INT_LINE 0x3c
#define CFG_INT_PIN 0x3d
#define CFG_CAP_START 0x40
#define CFG_LEGACY_END 0x100

#define CMD_IO 0x1
#define CMD_MEM 0x2
#define CMD_MASTER 0x4
#define CMD_INTX_DISABLE 0x400
#define STATUS_CAP_LIST 0x10
/* Error bits software clears by writing 1. */
#define STATUS_W1C 0xf900

static void put16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static void put32(uint8_t *p, uint32_t v) { put16(p, (uint16_t)v); put16(p + 2, (uint16_t)(v >> 16)); }
static uint32_t get32(const uint8_t *p) { return p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24; }

/* (Re)sizes the four tables to `size` bytes each, keeping what they hold. */
static int config_tables(struct vmm_pci_dev *dev, uint32_t size)
{
    uint8_t *t = calloc(4, size);
    if (!t)
        return -ENOMEM;
    /* The old tables sit back to back from dev->cfg, as the new ones do. */
    for (unsigned k = 0; dev->cfg && k < 4; k++)
        memcpy(t + k * size, dev->cfg + k * dev->cfg_size, dev->cfg_size);
    free(dev->cfg);
    dev->cfg = t;
    dev->wmask = t + size;
    dev->w1c = t + 2 * size;
    dev->passthrough = t + 3 * size;
    dev->cfg_size = size;
    return 0;
}

int vmm_pci_dev_create(const struct vmm_pci_space *space, uint16_t vendor, uint16_t device, uint32_t class_code,
                       uint8_t revision, uint16_t subsys_vendor, uint16_t subsys_id,
                       const struct vmm_pci_ops *ops, void *opaque, struct vmm_pci_dev **out)
{
    struct vmm_pci_dev *dev = calloc(1, sizeof(*dev));
    if (!dev)
        return -ENOMEM;
    if (config_tables(dev, CFG_LEGACY_END) < 0) {
        free(dev);
        return -ENOMEM;
    }
    pthread_mutex_init(&dev->lock, NULL);
    dev->space = *space;
    dev->ops = ops;
    dev->opaque = opaque;
    dev->cap_end = CFG_CAP_START;
    put16(dev->cfg + CFG_VENDOR, vendor);
    put16(dev->cfg + CFG_VENDOR + 2, device);
    dev->cfg[CFG_REVISION] = revision;
    dev->cfg[CFG_CLASS] = (uint8_t)class_code;
    dev->cfg[CFG_CLASS + 1] = (uint8_t)(class_code >> 8);
    dev->cfg[CFG_CLASS + 2] = (uint8_t)(class_code >> 16);
    put16(dev->cfg + CFG_SUBSYS_VENDOR, subsys_vendor);
    put16(dev->cfg + CFG_SUBSYS_VENDOR + 2, subsys_id);
    put16(dev->wmask + CFG_COMMAND, CMD_IO | CMD_MEM | CMD_MASTER | CMD_INTX_DISABLE);
    put16(dev->w1c + CFG_STATUS, STATUS_W1C);
    dev->wmask[CFG_INT_LINE] = 0xff;
    *out = dev;
    return 0;
}

static struct vmm_bus *bar_bus(const struct vmm_pci_dev *dev, const struct pci_bar *bar)
{
    return bar->kind == VMM_PCI_BAR_IO ? dev->space.pio : dev->space.mmio;
}

void vmm_pci_dev_destroy(struct vmm_pci_dev *dev)
{
    if (!dev)
        return;
    for (unsigned i = 0; i < VMM_PCI_BARS; i++) {
        struct pci_bar *bar = &dev->bars[i];
        if (bar->mapped)
            vmm_bus_unregister(bar_bus(dev, bar), bar->mapped_at);
    }
    pthread_mutex_destroy(&dev->lock);
    free(dev->cfg);
    free(dev);
}

static bool is_pow2(uint64_t v) { return v && !(v & (v - 1)); }

int vmm_pci_dev_add_bar(struct vmm_pci_dev *dev, unsigned bar, enum vmm_pci_bar_kind kind,
                        uint64_t size, bool prefetchable, vmm_io_fn fn, void *opaque)
{
    bool wide = kind == VMM_PCI_BAR_MEM64;
    if (bar >= VMM_PCI_BARS || (wide && bar + 1 >= VMM_PCI_BARS) || !is_pow2(size) || !fn)
        return -EINVAL;
    if ((kind == VMM_PCI_BAR_IO && (size < 4 || size > 256)) ||
        (kind == VMM_PCI_BAR_MEM32 && (size < 16 || size > (1ull << 31))) ||
        (wide && size < 16) || kind == VMM_PCI_BAR_NONE)
        return -EINVAL;
    if (dev->bars[bar].kind != VMM_PCI_BAR_NONE || (wide && dev->bars[bar + 1].kind != VMM_PCI_BAR_NONE))
        return -EEXIST;
    dev->bars[bar] = (struct pci_bar){ .kind = kind, .size = size, .prefetchable = prefetchable,
                                       .fn = fn, .opaque = opaque };
    uint8_t *reg = dev->cfg + CFG_BAR0 + 4 * bar;
    uint8_t *mask = dev->wmask + CFG_BAR0 + 4 * bar;
    uint64_t addr_mask = ~(size - 1);
    if (kind == VMM_PCI_BAR_IO) {
        put32(reg, 0x1);
        put32(mask, (uint32_t)addr_mask & 0xfffffffc);
    } else {
        put32(reg, (wide ? 0x4u : 0x0u) | (prefetchable ? 0x8u : 0x0u));
        put32(mask, (uint32_t)addr_mask & 0xfffffff0);
        if (wide)
            put32(mask + 4, (uint32_t)(addr_mask >> 32));
    }
    return 0;
}

/* The address the BAR's registers hold now. */
static uint64_t bar_register_address(const struct vmm_pci_dev *dev, unsigned i)
{
    const struct pci_bar *bar = &dev->bars[i];
    uint32_t low = get32(dev->cfg + CFG_BAR0 + 4 * i);
    if (bar->kind == VMM_PCI_BAR_IO)
        return low & 0xfffffffc;
    uint64_t addr = low & 0xfffffff0;
    if (bar->kind == VMM_PCI_BAR_MEM64)
        addr |= (uint64_t)get32(dev->cfg + CFG_BAR0 + 4 * (i + 1)) << 32;
    return addr;
}

void vmm_pci_dev_bar(struct vmm_pci_dev *dev, unsigned bar, struct vmm_pci_bar_info *out)
{
    *out = (struct vmm_pci_bar_info){ .kind = VMM_PCI_BAR_NONE };
    if (bar >= VMM_PCI_BARS || dev->bars[bar].size == 0)
        return;
    /* The registers change under a vCPU's config write. */
    pthread_mutex_lock(&dev->lock);
    *out = (struct vmm_pci_bar_info){ .kind = dev->bars[bar].kind, .size = dev->bars[bar].size,
                                      .address = bar_register_address(dev, bar),
                                      .prefetchable = dev->bars[bar].prefetchable };
    pthread_mutex_unlock(&dev->lock);
}

static struct vmm_ratelimit bar_conflict_limit;

/* Brings one BAR's bus range in line with the command register and the
 * BAR's address: registered, moved or removed. Lock held. */
static void bar_sync(struct vmm_pci_dev *dev, unsigned i)
{
    struct pci_bar *bar = &dev->bars[i];
    uint16_t cmd = dev->cfg[CFG_COMMAND] | dev->cfg[CFG_COMMAND + 1] << 8;
    uint64_t addr = bar_register_address(dev, i);
    bool decode = bar->kind == VMM_PCI_BAR_IO ? (cmd & CMD_IO) : (cmd & CMD_MEM);
    /* A BAR at 0, wrapping, or (for I/O) past 64K decodes nothing. */
    bool want = decode && addr != 0 && addr + bar->size > addr &&
                (bar->kind != VMM_PCI_BAR_IO || addr + bar->size <= 0x10000);
    if (bar->mapped && want && bar->mapped_at == addr)
        return;
    struct vmm_bus *bus = bar_bus(dev, bar);
    if (bar->mapped && want && vmm_bus_move(bus, bar->mapped_at, addr) == 0) {
        if (dev->ops && dev->ops->bar_mapped) {
            dev->ops->bar_mapped(dev->opaque, i, bar->mapped_at, false);
            dev->ops->bar_mapped(dev->opaque, i, addr, true);
        }
        bar->mapped_at = addr;
        return;
    }
    if (bar->mapped) {
        vmm_bus_unregister(bus, bar->mapped_at);
        bar->mapped = false;
        if (dev->ops && dev->ops->bar_mapped)
            dev->ops->bar_mapped(dev->opaque, i, bar->mapped_at, false);
    }
    if (!want)
        return;
    int ret = vmm_bus_register(bus, addr, bar->size, bar->fn, bar->opaque);
    if (ret < 0) {
        /* The guest put it over another device: that range keeps its owner
         * and this BAR stays dark until the guest moves it. */
        if (vmm_ratelimit_allow(&bar_conflict_limit))
            vmm_log_warn("PCI %04x:%04x BAR%u at 0x%llx+0x%llx overlaps another device; left unmapped",
                         dev->cfg[0] | dev->cfg[1] << 8, dev->cfg[2] | dev->cfg[3] << 8, i,
                         (unsigned long long)addr, (unsigned long long)bar->size);
        return;
    }
    bar->mapped = true;
    bar->mapped_at = addr;
    if (dev->ops && dev->ops->bar_mapped)
        dev->ops->bar_mapped(dev->opaque, i, addr, true);
}

static void bars_sync(struct vmm_pci_dev *dev)
{
    for (unsigned i = 0; i < VMM_PCI_BARS; i++)
        if (dev->bars[i].kind != VMM_PCI_BAR_NONE)
            bar_sync(dev, i);
}

int vmm_pci_dev_set_bar_address(struct vmm_pci_dev *dev, unsigned bar, uint64_t address)
{
    if (bar >= VMM_PCI_BARS || dev->bars[bar].kind == VMM_PCI_BAR_NONE ||
        address & (dev->bars[bar].size - 1))
        return -EINVAL;
    if (dev->bars[bar].kind != VMM_PCI_BAR_MEM64 && address >> 32)
        return -ERANGE;
    pthread_mutex_lock(&dev->lock);
    uint8_t *reg = dev->cfg + CFG_BAR0 + 4 * bar;
    put32(reg, (get32(reg) & ~get32(dev->wmask + CFG_BAR0 + 4 * bar)) | (uint32_t)address);
    if (dev->bars[bar].kind == VMM_PCI_BAR_MEM64)
        put32(reg + 4, (uint32_t)(address >> 32));
    bar_sync(dev, bar);
    pthread_mutex_unlock(&dev->lock);
    return 0;
}

uint64_t vmm_pci_dev_bar_address(struct vmm_pci_dev *dev, unsigned bar)
{
    if (bar >= VMM_PCI_BARS)
        return 0;
    pthread_mutex_lock(&dev->lock);
    uint64_t addr = dev->bars[bar].mapped ? dev->bars[bar].mapped_at : 0;
    pthread_mutex_unlock(&dev->lock);
    return addr;
}

int vmm_pci_dev_add_capability(struct vmm_pci_dev *dev, const uint8_t *body, const uint8_t *wmask,
                               uint8_t length, uint8_t *offset)
{
    uint16_t at = (uint16_t)((dev->cap_end + 3) & ~3u);
    if (length < 2 || at + length > CFG_LEGACY_END)
        return -ENOSPC;
    memcpy(dev->cfg + at, body, length);
    if (wmask)
        memcpy(dev->wmask + at, wmask, length);
    dev->cfg[at + 1] = 0;
    dev->wmask[at] = dev->wmask[at + 1] = 0;
    if (dev->last_cap)
        dev->cfg[dev->last_cap + 1] = (uint8_t)at;
    else
        dev->cfg[CFG_CAP_PTR] = (uint8_t)at;
    dev->cfg[CFG_STATUS] |= STATUS_CAP_LIST;
    dev->last_cap = (uint8_t)at;
    dev->cap_end = at + length;
    *offset = (uint8_t)at;
    return 0;
}

void vmm_pci_dev_set_intx(struct vmm_pci_dev *dev, uint8_t pin, uint8_t line)
{
    dev->cfg[CFG_INT_PIN] = pin;
    dev->cfg[CFG_INT_LINE] = line;
}

uint8_t *vmm_pci_dev_config_bytes(struct vmm_pci_dev *dev) { return dev->cfg; }

int vmm_pci_dev_load_config(struct vmm_pci_dev *dev, const uint8_t *config, uint32_t size)
{
    if (size > VMM_PCI_CFG_SIZE)
        size = VMM_PCI_CFG_SIZE;
    if (size > dev->cfg_size && config_tables(dev, size) < 0)
        return -ENOMEM;
    memcpy(dev->cfg, config, size);
    /* The device's own list is what the guest walks; none is added here. */
    dev->last_cap = 0;
    dev->cap_end = CFG_LEGACY_END;
    return 0;
}

void vmm_pci_dev_set_passthrough(struct vmm_pci_dev *dev, uint32_t offset, uint32_t length, bool on)
{
    if (offset < dev->cfg_size && length <= dev->cfg_size - offset)
        memset(dev->passthrough + offset, on, length);
}

void vmm_pci_dev_set_wmask(struct vmm_pci_dev *dev, uint32_t offset, const uint8_t *mask, uint32_t length)
{
    if (offset < dev->cfg_size && length <= dev->cfg_size - offset)
        memcpy(dev->wmask + offset, mask, length);
}

/* Whether any byte of the access belongs to the assigned device. */
static bool any_passthrough(const struct vmm_pci_dev *dev, uint32_t offset, uint32_t size)
{
    for (uint32_t i = 0; i < size; i++)
        if (dev->passthrough[offset + i])
            return true;
    return false;
}

static bool overlaps(uint32_t a, uint32_t alen, uint32_t b, uint32_t blen)
{
    return a < b + blen && b < a + alen;
}

void vmm_pci_dev_config_access(struct vmm_pci_dev *dev, uint32_t offset, uint8_t *data,
                               uint32_t size, bool is_write)
{
    if (size == 0 || size > 8 || offset >= VMM_PCI_CFG_SIZE || size > VMM_PCI_CFG_SIZE - offset) {
        if (!is_write)
            memset(data, 0xff, size);
        return;
    }
    /* Extended space a function lacks: zeros, as a conventional device
     * behind ECAM answers (no capability list at 0x100). */
    if (offset + size > dev->cfg_size) {
        if (!is_write)
            memset(data, 0, size);
        return;
    }
    pthread_mutex_lock(&dev->lock);
    bool device = dev->ops && any_passthrough(dev, offset, size);
    if (!is_write) {
        memcpy(data, dev->cfg + offset, size);
        if (device && dev->ops->device_read) {
            uint8_t live[8];
            dev->ops->device_read(dev->opaque, offset, live, size);
            for (uint32_t i = 0; i < size; i++)
                if (dev->passthrough[offset + i])
                    data[i] = live[i];
        }
        pthread_mutex_unlock(&dev->lock);
        return;
    }
    if (device && dev->ops->device_write)
        dev->ops->device_write(dev->opaque, offset, data, size);
    for (uint32_t i = 0; i < size; i++) {
        uint32_t o = offset + i;
        uint8_t v = data[i];
        dev->cfg[o] = (uint8_t)((dev->cfg[o] & ~dev->wmask[o]) | (v & dev->wmask[o]));
        dev->cfg[o] &= (uint8_t)~(v & dev->w1c[o]);
    }
    if (overlaps(offset, size, CFG_COMMAND, 2) || overlaps(offset, size, CFG_BAR0, 4 * VMM_PCI_BARS))
        bars_sync(dev);
    if (dev->ops && dev->ops->config_written)
        dev->ops->config_written(dev->opaque, offset, size);
    pthread_mutex_unlock(&dev->lock);
}

void vmm_pci_dev_save_config(struct vmm_pci_dev *dev, uint8_t out[VMM_PCI_CFG_SIZE])
{
    pthread_mutex_lock(&dev->lock);
    memcpy(out, dev->cfg, dev->cfg_size);
    memset(out + dev->cfg_size, 0, VMM_PCI_CFG_SIZE - dev->cfg_size);
    pthread_mutex_unlock(&dev->lock);
}

int vmm_pci_dev_restore_config(struct vmm_pci_dev *dev, const uint8_t config[VMM_PCI_CFG_SIZE])
{
    pthread_mutex_lock(&dev->lock);
    if (memcmp(dev->cfg + CFG_VENDOR, config + CFG_VENDOR, 4) != 0) {
        pthread_mutex_unlock(&dev->lock);
        return -ENODEV;
    }
    /* Read-only bytes stay this function's: only what a guest could have
     * written comes from the snapshot. */
    for (uint32_t i = 0; i < dev->cfg_size; i++)
        dev->cfg[i] = (uint8_t)((dev->cfg[i] & ~(dev->wmask[i] | dev->w1c[i])) |
                                (config[i] & (dev->wmask[i] | dev->w1c[i])));
    bars_sync(dev);
    if (dev->ops && dev->ops->config_written)
        dev->ops->config_written(dev->opaque, 0, dev->cfg_size);
    pthread_mutex_unlock(&dev->lock);
    return 0;
}
