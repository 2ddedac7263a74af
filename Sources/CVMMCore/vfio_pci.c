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

#include "pci_dev.h"
#include "vm_internal.h"
#include "vmm_gsi.h"
#include "vmm_irq.h"
#include "vmm_log.h"
#include "vmm_vfio.h"

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

struct vfio_bar {
    struct vmm_vfio_pci *owner;
    uint64_t size, offset; /* offset: the region's in the device fd */
    void *map;             /* the whole BAR mmapped, or NULL: trapped */
    bool slotted;
    uint32_t slot;
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
    int fd = bar->owner->fd;
    off_t at = (off_t)(bar->offset + offset);
    if (is_write) {
        ssize_t ignored = pwrite(fd, data, size, at);
        (void)ignored;
    } else if (pread(fd, data, size, at) != (ssize_t)size) {
        memset(data, 0xff, size);
    }
}

/* A mmapped BAR is a KVM memory slot wherever the guest decodes it. */
static void bar_mapped(void *opaque, unsigned index, uint64_t address, bool on)
{
    struct vmm_vfio_pci *d = opaque;
    struct vfio_bar *bar = &d->bars[index];
    if (!bar->map)
        return;
    if (!on) {
        if (bar->slotted)
            vmm_memory_unmap_device(d->vm, bar->slot);
        bar->slotted = false;
        return;
    }
    int ret = vmm_memory_map_device(d->vm, address, bar->size, bar->map, &bar->slot);
    bar->slotted = ret == 0;
    /* Then the access traps to bar_io, which still works, only slower. */
    if (ret < 0 && vmm_ratelimit_allow(&d->log_limit))
        vmm_log_warn("assigned device: BAR%u at 0x%llx cannot be mapped into the guest (%s); its accesses are trapped",
                     index, (unsigned long long)address, ret == -EEXIST ? "it overlaps guest memory" : "no free slot");
}

static int set_irqs(int fd, uint32_t index, uint32_t flags, uint32_t count, const int32_t *fds)
{
    size_t len = sizeof(struct vfio_irq_set) + count * sizeof(int32_t);
    union {
        struct vfio_irq_set set;
        uint8_t bytes[sizeof(struct vfio_irq_set) + MSI_MAX_VECTORS * sizeof(int32_t)];
    } u;
    memset(&u, 0, sizeof(u));
    u.set.argsz = (uint32_t)len;
    u.set.flags = flags;
    u.set.index = index;
    u.set.count = count;
    if (count && fds)
        memcpy(u.set.data, fds, count * sizeof(int32_t));
    return ioctl(fd, VFIO_DEVICE_SET_IRQS, &u.set) < 0 ? -errno : 0;
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

static void config_written(void *opaque, uint32_t offset, uint32_t size)
{
    struct vmm_vfio_pci *d = opaque;
    if (d->msi_cap && offset < d->msi_cap + d->msi_len && offset + size > d->msi_cap)
        msi_update(d);
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

/* Whether the region asks for some of it to stay trapped (a sparse-mmap
 * capability): then none of it is mmapped here. */
static bool region_sparse(int fd, const struct vfio_region_info *info)
{
    if (!(info->flags & VFIO_REGION_INFO_FLAG_CAPS))
        return false;
    uint8_t buf[4096];
    struct vfio_region_info *full = (struct vfio_region_info *)buf;
    *full = (struct vfio_region_info){ .argsz = sizeof(buf), .index = info->index };
    if (ioctl(fd, VFIO_DEVICE_GET_REGION_INFO, full) < 0 || full->argsz > sizeof(buf))
        return true;
    for (uint32_t at = full->cap_offset; at && at + sizeof(struct vfio_info_cap_header) <= sizeof(buf);) {
        const struct vfio_info_cap_header *h = (const void *)(buf + at);
        if (h->id == VFIO_REGION_INFO_CAP_SPARSE_MMAP)
            return true;
        if (h->next <= at)
            break;
        at = h->next;
    }
    return false;
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
        *bar = (struct vfio_bar){ .owner = d, .size = info.size, .offset = info.offset };
        int ret = vmm_pci_dev_add_bar(d->pci, i, kind, info.size, kind != VMM_PCI_BAR_IO && (reg & 8), bar_io, bar);
        if (ret < 0)
            return fail(err, "a BAR of a size or kind this VMM cannot place", ret);
        if (kind != VMM_PCI_BAR_IO && (info.flags & VFIO_REGION_INFO_FLAG_MMAP) && !(info.size & 4095) &&
            !region_sparse(d->fd, &info)) {
            void *map = mmap(NULL, info.size, PROT_READ | PROT_WRITE, MAP_SHARED, d->fd, (off_t)info.offset);
            bar->map = map == MAP_FAILED ? NULL : map;
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
    if (find_cap(cfg, CAP_MSIX))
        return fail(err, "the device has MSI-X, which assigned devices do not support yet", -ENOTSUP);

    struct vmm_vfio_pci *d = calloc(1, sizeof(*d));
    if (!d)
        return fail(err, "allocate the device", -ENOMEM);
    d->vm = vm;
    d->fd = device_fd;
    d->config_offset = config.offset;
    d->intx_irq.eventfd = d->intx_resample = -1;
    for (unsigned i = 0; i < MSI_MAX_VECTORS; i++)
        d->msi[i].eventfd = -1;
    int ret = vmm_pci_dev_create(vm, 0, 0, 0, 0, 0, 0, &vfio_pci_ops, d, &d->pci);
    if (ret < 0) {
        free(d);
        return fail(err, "allocate the PCI function", ret);
    }
    /* The device answers for everything but what describes the guest's
     * machine: BARs and ROM (emulated; the ROM hidden), the interrupt line. */
    uint8_t header[CFG_CAP_PTR];
    memcpy(header, cfg, sizeof(header));
    memset(cfg + CFG_BAR0, 0, CFG_CAP_PTR - CFG_BAR0);
    vmm_pci_dev_load_config(d->pci, cfg, cfg_size);
    vmm_pci_dev_set_passthrough(d->pci, 0, cfg_size, true);
    vmm_pci_dev_set_passthrough(d->pci, CFG_BAR0, 6 * 4, false);
    vmm_pci_dev_set_passthrough(d->pci, CFG_ROM, 4, false);
    vmm_pci_dev_set_passthrough(d->pci, CFG_INT_LINE, 1, false);
    vmm_pci_dev_config_bytes(d->pci)[CFG_INT_LINE] = (uint8_t)intx_gsi;
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
        if (bar->slotted)
            vmm_memory_unmap_device(d->vm, bar->slot);
        if (bar->map)
            munmap(bar->map, bar->size);
    }
    vmm_pci_dev_destroy(d->pci);
    ioctl(d->fd, VFIO_DEVICE_RESET);
    free(d);
}
