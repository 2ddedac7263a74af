/* An assigned device as a PCI function: see vmm_vfio.h.
 *
 * The guest sees the device's own config space, except what must describe
 * the guest's machine rather than the host's: BARs (placed in the guest's
 * windows), the ROM BAR (hidden), the interrupt line and the MSI
 * capability (its address and data become a KVM route, not a host MSI). */
#include <errno.h>
#include <linux/vfio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "pci/pci_dev.h"
#include "vm/vm_internal.h"
#include "irq/vmm_gsi.h"
#include "irq/vmm_irq.h"
#include "common/vmm_log.h"
#include "irq/vmm_msix.h"
#include "vfio/vmm_vfio.h"

#define CFG_COMMAND 0x04
#define CFG_BAR0 0x10
#define CFG_ROM 0x30
#define CFG_CAP_PTR 0x34
#define CFG_INT_LINE 0x3c
#define CFG_INT_PIN 0x3d
#define CAP_MSI 0x05
#define CAP_MSIX 0x11
#define MSI_ENABLE 0x0001
#define MSI_64BIT 0x0080
#define MSI_PER_VECTOR_MASK 0x0100
#define MSI_MAX_VECTORS 32

#define MAX_AREAS 4

/* A page-aligned part of a BAR that is mmapped and becomes a memory slot
 * wherever the guest puts the BAR. */
struct bar_area {
    uint64_t offset, size;
    void *map;
    bool slotted;
    uint32_t slot;
};

struct vfio_bar {
    struct vmm_vfio_pci *owner;
    unsigned index;
    uint64_t size, offset; /* offset: the region's in the device fd */
    struct bar_area areas[MAX_AREAS]; /* what is not here is trapped */
    unsigned nareas;
};

struct vmm_vfio_pci {
    struct vmm_vm *vm;
    int fd;
    struct vmm_pci_dev *pci;
    uint64_t config_offset;
    struct vfio_bar bars[VMM_PCI_BARS];
    /* INTx: trigger and resample eventfds wired to KVM and VFIO. */
    bool intx;
    bool intx_on;
    struct vmm_irq intx_irq;
    int intx_resample;
    /* MSI */
    uint8_t msi_cap;
    unsigned msi_len, msi_max;
    bool msi_on;
    unsigned msi_count;
    struct vmm_irq msi[MSI_MAX_VECTORS];
    /* MSI-X: the table (trapped) in BAR `msix_bar` at `msix_table`. */
    struct vmm_msix *msix;
    unsigned msix_vectors, msix_bar;
    uint64_t msix_table;
    struct vmm_ratelimit log_limit;
};

static int fail(struct vmm_vfio_error *err, const char *what, int code)
{
    if (err) {
        err->code = code;
        err->what = what;
    }
    return code;
}

static void device_read(void *opaque, uint32_t offset, uint8_t *data, uint32_t size)
{
    struct vmm_vfio_pci *d = opaque;
    if (pread(d->fd, data, size, (off_t)(d->config_offset + offset)) != (ssize_t)size)
        memset(data, 0xff, size);
}

static void device_write(void *opaque, uint32_t offset, const uint8_t *data, uint32_t size)
{
    struct vmm_vfio_pci *d = opaque;
    ssize_t ignored = pwrite(d->fd, data, size, (off_t)(d->config_offset + offset));
    (void)ignored;
}

static void bar_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t size, bool is_write)
{
    struct vfio_bar *bar = opaque;
    struct vmm_vfio_pci *d = bar->owner;
    if (d->msix && bar->index == d->msix_bar && offset >= d->msix_table &&
        offset - d->msix_table < (uint64_t)d->msix_vectors * VMM_MSIX_ENTRY_SIZE) {
        vmm_msix_table_io(d->msix, offset - d->msix_table, data, size, is_write);
        return;
    }
    int fd = d->fd;
    off_t at = (off_t)(bar->offset + offset);
    if (is_write) {
        ssize_t ignored = pwrite(fd, data, size, at);
        (void)ignored;
    } else if (pread(fd, data, size, at) != (ssize_t)size) {
        memset(data, 0xff, size);
    }
}

/* A BAR's mmapped areas are KVM memory slots wherever the guest decodes it. */
static void bar_mapped(void *opaque, unsigned index, uint64_t address, bool on)
{
    struct vmm_vfio_pci *d = opaque;
    struct vfio_bar *bar = &d->bars[index];
    for (unsigned i = 0; i < bar->nareas; i++) {
        struct bar_area *a = &bar->areas[i];
        if (!on) {
            if (a->slotted)
                vmm_memory_unmap_device(d->vm, a->slot);
            a->slotted = false;
            continue;
        }
        int ret = vmm_memory_map_device(d->vm, address + a->offset, a->size, a->map, &a->slot);
        a->slotted = ret == 0;
        /* Then the access traps to bar_io, which still works, only slower. */
        if (ret < 0 && vmm_ratelimit_allow(&d->log_limit))
            vmm_log_warn("assigned device: BAR%u at 0x%llx cannot be mapped into the guest (%s); its accesses are trapped",
                         index, (unsigned long long)address,
                         ret == -EEXIST ? "it overlaps guest memory" : "no free slot");
    }
}

static int set_irqs(int fd, uint32_t index, uint32_t flags, uint32_t count, const int32_t *fds)
{
    size_t len = sizeof(struct vfio_irq_set) + (fds ? count * sizeof(int32_t) : 0);
    struct vfio_irq_set *set = calloc(1, len);
    if (!set)
        return -ENOMEM;
    set->argsz = (uint32_t)len;
    set->flags = flags;
    set->index = index;
    set->count = count;
    if (fds)
        memcpy(set->data, fds, count * sizeof(int32_t));
    int ret = ioctl(fd, VFIO_DEVICE_SET_IRQS, set) < 0 ? -errno : 0;
    free(set);
    return ret;
}

static int intx_enable(struct vmm_vfio_pci *d, bool on)
{
    if (!d->intx || d->intx_on == on)
        return 0;
    int ret;
    if (on) {
        int32_t trigger = d->intx_irq.eventfd, resample = d->intx_resample;
        ret = set_irqs(d->fd, VFIO_PCI_INTX_IRQ_INDEX, VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER, 1, &trigger);
        if (ret == 0)
            ret = set_irqs(d->fd, VFIO_PCI_INTX_IRQ_INDEX, VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_UNMASK, 1, &resample);
    } else {
        ret = set_irqs(d->fd, VFIO_PCI_INTX_IRQ_INDEX, VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_TRIGGER, 0, NULL);
    }
    if (ret == 0)
        d->intx_on = on;
    return ret;
}

static uint32_t cfg32(const uint8_t *cfg, unsigned at) { return cfg[at] | cfg[at + 1] << 8 | cfg[at + 2] << 16 | (uint32_t)cfg[at + 3] << 24; }

/* The guest programmed the MSI capability: routes for its vectors, then
 * VFIO's eventfds on or off (INTx is off while MSI is on). Lock held. */
static void msi_update(struct vmm_vfio_pci *d)
{
    const uint8_t *cfg = vmm_pci_dev_config_bytes(d->pci);
    unsigned cap = d->msi_cap;
    uint16_t ctrl = (uint16_t)(cfg[cap + 2] | cfg[cap + 3] << 8);
    bool wide = ctrl & MSI_64BIT;
    uint64_t address = cfg32(cfg, cap + 4) | (wide ? (uint64_t)cfg32(cfg, cap + 8) << 32 : 0);
    uint16_t data = (uint16_t)(cfg[cap + (wide ? 12 : 8)] | cfg[cap + (wide ? 13 : 9)] << 8);
    unsigned count = 1u << ((ctrl >> 4) & 7);
    if (count > d->msi_max)
        count = d->msi_max;
    if (!(ctrl & MSI_ENABLE)) {
        if (d->msi_on) {
            set_irqs(d->fd, VFIO_PCI_MSI_IRQ_INDEX, VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_TRIGGER, 0, NULL);
            d->msi_on = false;
            intx_enable(d, true);
        }
        return;
    }
    /* With several messages the low bits of the data select the vector. */
    for (unsigned i = 0; i < count; i++)
        vmm_gsi_set_msi(d->vm, d->msi[i].gsi, address, (uint32_t)((data & ~(count - 1)) | i));
    if (d->msi_on && d->msi_count == count)
        return;
    if (d->msi_on)
        set_irqs(d->fd, VFIO_PCI_MSI_IRQ_INDEX, VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_TRIGGER, 0, NULL);
    intx_enable(d, false);
    int32_t fds[MSI_MAX_VECTORS];
    for (unsigned i = 0; i < count; i++)
        fds[i] = d->msi[i].eventfd;
    int ret = set_irqs(d->fd, VFIO_PCI_MSI_IRQ_INDEX, VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER, count, fds);
    d->msi_on = ret == 0;
    d->msi_count = d->msi_on ? count : 0;
    if (ret < 0 && vmm_ratelimit_allow(&d->log_limit))
        vmm_log_warn("assigned device: enabling %u MSI vector(s) failed (errno %d)", count, -ret);
}

/* The guest turned MSI-X on or off: VFIO gets every vector's eventfd, or
 * none (INTx is off while MSI-X is on). Lock held. */
static void msix_enable(void *opaque, bool enabled)
{
    struct vmm_vfio_pci *d = opaque;
    int ret;
    if (enabled) {
        intx_enable(d, false);
        int32_t *fds = calloc(d->msix_vectors, sizeof(int32_t));
        if (!fds)
            return;
        for (unsigned i = 0; i < d->msix_vectors; i++)
            fds[i] = vmm_msix_eventfd(d->msix, i);
        ret = set_irqs(d->fd, VFIO_PCI_MSIX_IRQ_INDEX, VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER,
                       d->msix_vectors, fds);
        free(fds);
    } else {
        ret = set_irqs(d->fd, VFIO_PCI_MSIX_IRQ_INDEX, VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_TRIGGER, 0, NULL);
        intx_enable(d, true);
    }
    if (ret < 0 && vmm_ratelimit_allow(&d->log_limit))
        vmm_log_warn("assigned device: turning MSI-X %s failed (errno %d)", enabled ? "on" : "off", -ret);
}

static void config_written(void *opaque, uint32_t offset, uint32_t size)
{
    struct vmm_vfio_pci *d = opaque;
    if (d->msi_cap && offset < d->msi_cap + d->msi_len && offset + size > d->msi_cap)
        msi_update(d);
    if (d->msix)
        vmm_msix_config_written(d->msix, offset, size);
}

static const struct vmm_pci_ops vfio_pci_ops = {
    .config_written = config_written,
    .bar_mapped = bar_mapped,
    .device_read = device_read,
    .device_write = device_write,
};

static int region(int fd, uint32_t index, struct vfio_region_info *info)
{
    *info = (struct vfio_region_info){ .argsz = sizeof(*info), .index = index };
    return ioctl(fd, VFIO_DEVICE_GET_REGION_INFO, info) < 0 ? -errno : 0;
}

/* The parts of a region VFIO lets us mmap: its sparse-mmap areas if it
 * lists them, else all of it. Returns how many (0: none). */
static unsigned region_areas(int fd, const struct vfio_region_info *info, struct bar_area *out, unsigned max)
{
    if (!(info->flags & VFIO_REGION_INFO_FLAG_MMAP))
        return 0;
    if (info->flags & VFIO_REGION_INFO_FLAG_CAPS) {
        uint8_t buf[4096];
        struct vfio_region_info *full = (struct vfio_region_info *)buf;
        *full = (struct vfio_region_info){ .argsz = sizeof(buf), .index = info->index };
        if (ioctl(fd, VFIO_DEVICE_GET_REGION_INFO, full) < 0 || full->argsz > sizeof(buf))
            return 0;
        for (uint32_t at = full->cap_offset; at && at + sizeof(struct vfio_info_cap_header) <= sizeof(buf);) {
            const struct vfio_info_cap_header *h = (const void *)(buf + at);
            if (h->id == VFIO_REGION_INFO_CAP_SPARSE_MMAP) {
                const struct vfio_region_info_cap_sparse_mmap *sparse = (const void *)h;
                unsigned n = 0;
                for (uint32_t i = 0; i < sparse->nr_areas && n < max &&
                     at + sizeof(*sparse) + (i + 1) * sizeof(sparse->areas[0]) <= sizeof(buf); i++)
                    if (sparse->areas[i].size)
                        out[n++] = (struct bar_area){ .offset = sparse->areas[i].offset, .size = sparse->areas[i].size };
                return n;
            }
            if (h->next <= at)
                break;
            at = h->next;
        }
    }
    out[0] = (struct bar_area){ .offset = 0, .size = info->size };
    return 1;
}

/* Cuts [hole, hole_end) out of the areas, page-aligned outwards. */
static unsigned cut(struct bar_area *areas, unsigned n, uint64_t hole, uint64_t hole_end)
{
    hole &= ~4095ull;
    hole_end = (hole_end + 4095) & ~4095ull;
    struct bar_area result[MAX_AREAS];
    unsigned m = 0;
    for (unsigned i = 0; i < n; i++) {
        uint64_t start = areas[i].offset, end = start + areas[i].size;
        if (end <= hole || start >= hole_end) {
            if (m < MAX_AREAS)
                result[m++] = areas[i];
            continue;
        }
        if (start < hole && m < MAX_AREAS)
            result[m++] = (struct bar_area){ .offset = start, .size = hole - start };
        if (end > hole_end && m < MAX_AREAS)
            result[m++] = (struct bar_area){ .offset = hole_end, .size = end - hole_end };
    }
    memcpy(areas, result, m * sizeof(result[0]));
    return m;
}

static int setup_bars(struct vmm_vfio_pci *d, const uint8_t *cfg, struct vmm_vfio_error *err)
{
    for (unsigned i = 0; i < VMM_PCI_BARS; i++) {
        struct vfio_region_info info;
        if (region(d->fd, VFIO_PCI_BAR0_REGION_INDEX + i, &info) < 0 || info.size == 0)
            continue;
        uint32_t reg = cfg32(cfg, CFG_BAR0 + 4 * i);
        enum vmm_pci_bar_kind kind = (reg & 1) ? VMM_PCI_BAR_IO
                                     : ((reg >> 1) & 3) == 2 ? VMM_PCI_BAR_MEM64 : VMM_PCI_BAR_MEM32;
        struct vfio_bar *bar = &d->bars[i];
        *bar = (struct vfio_bar){ .owner = d, .index = i, .size = info.size, .offset = info.offset };
        int ret = vmm_pci_dev_add_bar(d->pci, i, kind, info.size, kind != VMM_PCI_BAR_IO && (reg & 8), bar_io, bar);
        if (ret < 0)
            return fail(err, "a BAR of a size or kind this VMM cannot place", ret);
        if (kind != VMM_PCI_BAR_IO && !(info.size & 4095)) {
            struct bar_area areas[MAX_AREAS];
            unsigned n = region_areas(d->fd, &info, areas, MAX_AREAS);
            /* The MSI-X table is the guest's view, not the device's: trapped. */
            if (d->msix_vectors && d->msix_bar == i)
                n = cut(areas, n, d->msix_table, d->msix_table + (uint64_t)d->msix_vectors * VMM_MSIX_ENTRY_SIZE);
            for (unsigned a = 0; a < n; a++) {
                if ((areas[a].offset | areas[a].size) & 4095 || areas[a].offset + areas[a].size > info.size)
                    continue;
                void *map = mmap(NULL, areas[a].size, PROT_READ | PROT_WRITE, MAP_SHARED, d->fd,
                                 (off_t)(info.offset + areas[a].offset));
                if (map == MAP_FAILED)
                    continue;
                areas[a].map = map;
                bar->areas[bar->nareas++] = areas[a];
            }
        }
        if (kind == VMM_PCI_BAR_MEM64)
            i++;
    }
    return 0;
}

/* The capability with `id` in the legacy list, or 0. */
static uint8_t find_cap(const uint8_t *cfg, uint8_t id)
{
    uint8_t at = cfg[CFG_CAP_PTR] & 0xfc;
    for (int hops = 0; at >= 0x40 && hops < 48; hops++) {
        if (cfg[at] == id)
            return at;
        at = cfg[at + 1] & 0xfc;
    }
    return 0;
}

static int setup_msi(struct vmm_vfio_pci *d, const uint8_t *cfg)
{
    d->msi_cap = find_cap(cfg, CAP_MSI);
    struct vfio_irq_info info = { .argsz = sizeof(info), .index = VFIO_PCI_MSI_IRQ_INDEX };
    if (!d->msi_cap || ioctl(d->fd, VFIO_DEVICE_GET_IRQ_INFO, &info) < 0 || info.count == 0) {
        d->msi_cap = 0;
        return 0;
    }
    unsigned cap = d->msi_cap;
    uint16_t ctrl = (uint16_t)(cfg[cap + 2] | cfg[cap + 3] << 8);
    bool wide = ctrl & MSI_64BIT, masking = ctrl & MSI_PER_VECTOR_MASK;
    d->msi_max = 1u << ((ctrl >> 1) & 7);
    if (d->msi_max > info.count)
        d->msi_max = info.count;
    if (d->msi_max > MSI_MAX_VECTORS)
        d->msi_max = MSI_MAX_VECTORS;
    d->msi_len = (wide ? 14 : 10) + (masking ? 10 : 0);
    /* The guest's view: enable and the message count it grants are
     * writable, and address, data and mask bits; nothing reaches the device. */
    uint8_t mask[24] = { 0 };
    mask[2] = 0x71;
    memset(mask + 4, 0xff, wide ? 8 : 4);
    mask[4] = 0xfc;
    memset(mask + (wide ? 12 : 8), 0xff, 2);
    if (masking)
        memset(mask + (wide ? 16 : 12), 0xff, 4);
    vmm_pci_dev_set_passthrough(d->pci, cap + 2, d->msi_len - 2, false);
    vmm_pci_dev_set_wmask(d->pci, cap, mask, d->msi_len);
    for (unsigned i = 0; i < d->msi_max; i++) {
        uint32_t gsi;
        int ret = vmm_gsi_alloc(d->vm, &gsi);
        if (ret < 0 || (ret = vmm_irq_create(d->vm, gsi, &d->msi[i])) < 0) {
            if (ret != -ENOSPC)
                vmm_gsi_free(d->vm, gsi);
            return ret;
        }
    }
    return 0;
}

static int setup_intx(struct vmm_vfio_pci *d, const uint8_t *cfg, uint32_t gsi)
{
    struct vfio_irq_info info = { .argsz = sizeof(info), .index = VFIO_PCI_INTX_IRQ_INDEX };
    if (cfg[CFG_INT_PIN] == 0 || ioctl(d->fd, VFIO_DEVICE_GET_IRQ_INFO, &info) < 0 || info.count == 0)
        return 0;
    d->intx_resample = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    int trigger = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (d->intx_resample < 0 || trigger < 0) {
        if (trigger >= 0)
            close(trigger);
        return -errno;
    }
    /* Level-triggered: KVM deasserts at the guest's EOI and signals the
     * resample fd, on which VFIO unmasks the device's line. */
    struct kvm_irqfd irqfd = { .fd = (uint32_t)trigger, .gsi = gsi, .flags = KVM_IRQFD_FLAG_RESAMPLE,
                               .resamplefd = (uint32_t)d->intx_resample };
    if (ioctl(d->vm->vm_fd, KVM_IRQFD, &irqfd) < 0) {
        int ret = -errno;
        close(trigger);
        return ret;
    }
    d->intx_irq = (struct vmm_irq){ .eventfd = trigger, .gsi = gsi };
    d->intx = true;
    return intx_enable(d, true);
}

int vmm_vfio_pci_create(struct vmm_vm *vm, int device_fd, uint32_t intx_gsi, struct vmm_vfio_pci **out,
                        struct vmm_vfio_error *err)
{
    struct vfio_device_info info = { .argsz = sizeof(info) };
    if (ioctl(device_fd, VFIO_DEVICE_GET_INFO, &info) < 0)
        return fail(err, "VFIO_DEVICE_GET_INFO", -errno);
    if (!(info.flags & VFIO_DEVICE_FLAGS_PCI))
        return fail(err, "not a PCI device", -ENODEV);
    if (info.flags & VFIO_DEVICE_FLAGS_RESET)
        ioctl(device_fd, VFIO_DEVICE_RESET);
    struct vfio_region_info config;
    if (region(device_fd, VFIO_PCI_CONFIG_REGION_INDEX, &config) < 0)
        return fail(err, "VFIO_DEVICE_GET_REGION_INFO(config)", -errno);
    uint8_t cfg[VMM_PCI_CFG_SIZE] = { 0 };
    uint32_t cfg_size = config.size < sizeof(cfg) ? (uint32_t)config.size : (uint32_t)sizeof(cfg);
    if (pread(device_fd, cfg, cfg_size, (off_t)config.offset) != (ssize_t)cfg_size)
        return fail(err, "read the device's config space", -EIO);

    struct vmm_vfio_pci *d = calloc(1, sizeof(*d));
    if (!d)
        return fail(err, "allocate the device", -ENOMEM);
    d->vm = vm;
    d->fd = device_fd;
    d->config_offset = config.offset;
    d->intx_irq.eventfd = d->intx_resample = -1;
    for (unsigned i = 0; i < MSI_MAX_VECTORS; i++)
        d->msi[i].eventfd = -1;
    struct vmm_pci_space space = { vmm_vm_pio_bus(vm), vmm_vm_mmio_bus(vm) };
    int ret = vmm_pci_dev_create(&space, 0, 0, 0, 0, 0, 0, &vfio_pci_ops, d, &d->pci);
    if (ret < 0) {
        free(d);
        return fail(err, "allocate the PCI function", ret);
    }
    /* The device answers for everything but what describes the guest's
     * machine: BARs and ROM (emulated; the ROM hidden), the interrupt line. */
    uint8_t header[CFG_CAP_PTR];
    memcpy(header, cfg, sizeof(header));
    memset(cfg + CFG_BAR0, 0, CFG_CAP_PTR - CFG_BAR0);
    if ((ret = vmm_pci_dev_load_config(d->pci, cfg, cfg_size)) < 0) {
        fail(err, "allocate the function's config space", ret);
        vmm_vfio_pci_destroy(d);
        return ret;
    }
    vmm_pci_dev_set_passthrough(d->pci, 0, cfg_size, true);
    vmm_pci_dev_set_passthrough(d->pci, CFG_BAR0, 6 * 4, false);
    vmm_pci_dev_set_passthrough(d->pci, CFG_ROM, 4, false);
    vmm_pci_dev_set_passthrough(d->pci, CFG_INT_LINE, 1, false);
    vmm_pci_dev_config_bytes(d->pci)[CFG_INT_LINE] = (uint8_t)intx_gsi;
    uint8_t msix_cap = find_cap(cfg, CAP_MSIX);
    if (msix_cap) {
        d->msix_vectors = ((cfg[msix_cap + 2] | cfg[msix_cap + 3] << 8) & 0x7ff) + 1u;
        uint32_t table = cfg32(cfg, msix_cap + 4);
        d->msix_bar = table & 7;
        d->msix_table = table & ~7u;
        ret = vmm_msix_attach(vm, d->pci, msix_cap, d->msix_vectors, msix_enable, d, &d->msix);
        if (ret < 0) {
            fail(err, "set up MSI-X", ret);
            vmm_vfio_pci_destroy(d);
            return ret;
        }
    }
    if ((ret = setup_bars(d, header, err)) < 0 || (ret = setup_msi(d, cfg)) < 0 ||
        (ret = setup_intx(d, cfg, intx_gsi)) < 0) {
        if (err && !err->what)
            fail(err, "set up the device's interrupts", ret);
        vmm_vfio_pci_destroy(d);
        return ret;
    }
    *out = d;
    return 0;
}

struct vmm_pci_dev *vmm_vfio_pci_function(struct vmm_vfio_pci *d) { return d->pci; }

void vmm_vfio_pci_destroy(struct vmm_vfio_pci *d)
{
    if (!d)
        return;
    if (d->msi_on)
        set_irqs(d->fd, VFIO_PCI_MSI_IRQ_INDEX, VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_TRIGGER, 0, NULL);
    if (d->msix) {
        set_irqs(d->fd, VFIO_PCI_MSIX_IRQ_INDEX, VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_TRIGGER, 0, NULL);
        vmm_msix_destroy(d->msix);
    }
    intx_enable(d, false);
    for (unsigned i = 0; i < MSI_MAX_VECTORS; i++) {
        if (d->msi[i].eventfd >= 0) {
            uint32_t gsi = d->msi[i].gsi;
            vmm_irq_release(d->vm, &d->msi[i]);
            vmm_gsi_free(d->vm, gsi);
        }
    }
    if (d->intx_irq.eventfd >= 0) {
        struct kvm_irqfd irqfd = { .fd = (uint32_t)d->intx_irq.eventfd, .gsi = d->intx_irq.gsi,
                                   .flags = KVM_IRQFD_FLAG_DEASSIGN };
        ioctl(d->vm->vm_fd, KVM_IRQFD, &irqfd);
        close(d->intx_irq.eventfd);
    }
    if (d->intx_resample >= 0)
        close(d->intx_resample);
    for (unsigned i = 0; i < VMM_PCI_BARS; i++) {
        struct vfio_bar *bar = &d->bars[i];
        for (unsigned a = 0; a < bar->nareas; a++) {
            if (bar->areas[a].slotted)
                vmm_memory_unmap_device(d->vm, bar->areas[a].slot);
            munmap(bar->areas[a].map, bar->areas[a].size);
        }
    }
    vmm_pci_dev_destroy(d->pci);
    ioctl(d->fd, VFIO_DEVICE_RESET);
    free(d);
}
