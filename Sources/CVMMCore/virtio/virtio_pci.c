/* The modern virtio-pci transport: one 64-bit memory BAR holding the
 * common, ISR, device-config and notify structures plus the MSI-X table
 * and PBA, announced by vendor capabilities. Queue kicks are ioeventfds
 * moved with the BAR; interrupts are MSI-X vectors. */
#include <errno.h>
#include <linux/kvm.h>
#include <linux/virtio_pci.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "pci/pci_dev.h"
#include "virtio/virtio_dev.h"
#include "vm/vm_internal.h"
#include "irq/vmm_msix.h"

#define VIRTIO_PCI_VENDOR 0x1af4
#define VIRTIO_PCI_DEVICE_BASE 0x1040
#define VIRTIO_PCI_SUBSYS 0x1100

/* BAR 0's layout: each structure in its own 4 KiB page. */
#define BAR_COMMON 0x0000
#define BAR_ISR    0x1000
#define BAR_DEVICE 0x2000
#define BAR_NOTIFY 0x3000
#define BAR_MSIX   0x4000
#define BAR_PBA    0x6000
#define BAR_SIZE   0x8000
#define REGION     0x1000
#define NOTIFY_MULTIPLIER 4
#define COMMON_SIZE 0x38

struct vmm_virtio_pci {
    struct vmm_vm *vm;
    struct vmm_virtio *virtio;
    struct vmm_pci_dev *pci;
    struct vmm_msix *msix;
    uint32_t device_feature_select, driver_feature_select;
    uint16_t queue_select;
    _Atomic uint8_t isr;
    bool ioeventfds;       /* registered at `notify_base` */
    uint64_t notify_base;
};

static void put16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static void put32(uint8_t *p, uint32_t v) { put16(p, (uint16_t)v); put16(p + 2, (uint16_t)(v >> 16)); }
static uint64_t get_le(const uint8_t *p, uint32_t size)
{
    uint64_t v = 0;
    for (uint32_t i = 0; i < size; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

static int vector_eventfd(void *opaque, uint16_t vector)
{
    struct vmm_virtio_pci *t = opaque;
    return vector == VIRTIO_NO_VECTOR ? -1 : vmm_msix_eventfd(t->msix, vector);
}

static void signal_vector(void *opaque, uint16_t vector)
{
    struct vmm_virtio_pci *t = opaque;
    if (vector == VIRTIO_NO_VECTOR)
        return;
    atomic_fetch_or(&t->isr, 1);
    vmm_msix_signal(t->msix, vector);
}

/* The common configuration structure (§4.1.4.3), as bytes. Lock held. */
static void common_image(struct vmm_virtio_pci *t, uint8_t *img)
{
    struct vmm_virtio *v = t->virtio;
    memset(img, 0, COMMON_SIZE);
    put32(img + 0x00, t->device_feature_select);
    put32(img + 0x04, t->device_feature_select < 2 ? (uint32_t)(v->features >> (32 * t->device_feature_select)) : 0);
    put32(img + 0x08, t->driver_feature_select);
    put32(img + 0x0c, t->driver_feature_select < 2 ? (uint32_t)(v->driver_features >> (32 * t->driver_feature_select)) : 0);
    put16(img + 0x10, v->config_vector);
    put16(img + 0x12, (uint16_t)v->nqueues);
    img[0x14] = v->status;
    img[0x15] = v->config_generation;
    put16(img + 0x16, t->queue_select);
    if (t->queue_select < v->nqueues) {
        const struct virtio_queue *q = &v->queues[t->queue_select];
        put16(img + 0x18, q->size);
        put16(img + 0x1a, q->vector);
        put16(img + 0x1c, q->enabled);
        put16(img + 0x1e, t->queue_select);
        put32(img + 0x20, (uint32_t)q->desc); put32(img + 0x24, (uint32_t)(q->desc >> 32));
        put32(img + 0x28, (uint32_t)q->driver); put32(img + 0x2c, (uint32_t)(q->driver >> 32));
        put32(img + 0x30, (uint32_t)q->device); put32(img + 0x34, (uint32_t)(q->device >> 32));
    }
}

/* Half of a 64-bit ring address. */
static void set_half(uint64_t *field, uint32_t offset, uint32_t size, uint64_t value)
{
    if (size == 8)
        *field = value;
    else if (offset & 4)
        *field = (*field & 0xffffffffull) | value << 32;
    else
        *field = (*field & ~0xffffffffull) | (uint32_t)value;
}

static uint16_t valid_vector(struct vmm_virtio_pci *t, uint64_t value)
{
    return value < vmm_msix_vector_count(t->msix) ? (uint16_t)value : VIRTIO_NO_VECTOR;
}

static void common_write(struct vmm_virtio_pci *t, uint32_t offset, uint32_t size, uint64_t value)
{
    struct vmm_virtio *v = t->virtio;
    if (offset == 0x14 && size == 1) {
        virtio_set_status(v, (uint8_t)value);
        return;
    }
    pthread_mutex_lock(&v->lock);
    struct virtio_queue *q = t->queue_select < v->nqueues ? &v->queues[t->queue_select] : NULL;
    /* Queue and feature setup is only for a driver that has not started. */
    bool setup = !(v->status & VIRTIO_CONFIG_S_DRIVER_OK);
    bool features_open = setup && !(v->status & VIRTIO_CONFIG_S_FEATURES_OK);
    switch (offset) {
    case 0x00: if (size == 4) t->device_feature_select = (uint32_t)value; break;
    case 0x08: if (size == 4) t->driver_feature_select = (uint32_t)value; break;
    case 0x0c:
        if (size == 4 && features_open && t->driver_feature_select < 2) {
            unsigned shift = 32 * t->driver_feature_select;
            v->driver_features = (v->driver_features & ~(0xffffffffull << shift)) | value << shift;
        }
        break;
    case 0x10: if (size == 2) v->config_vector = valid_vector(t, value); break;
    case 0x16: if (size == 2) t->queue_select = (uint16_t)value; break;
    case 0x18:
        /* Split queues are a power of two no larger than the device's maximum. */
        if (size == 2 && q && setup && value && value <= q->max_size && !(value & (value - 1)))
            q->size = (uint16_t)value;
        break;
    case 0x1a: if (size == 2 && q) q->vector = valid_vector(t, value); break;
    case 0x1c: if (size == 2 && q && setup && value == 1) q->enabled = true; break;
    case 0x20: case 0x24: if (q && setup) set_half(&q->desc, offset, size, value); break;
    case 0x28: case 0x2c: if (q && setup) set_half(&q->driver, offset, size, value); break;
    case 0x30: case 0x34: if (q && setup) set_half(&q->device, offset, size, value); break;
    default: break; /* read-only fields */
    }
    pthread_mutex_unlock(&v->lock);
}

static void notify(struct vmm_virtio_pci *t, uint64_t offset)
{
    uint64_t q = offset / NOTIFY_MULTIPLIER;
    if (q < t->virtio->nqueues) {
        uint64_t one = 1;
        ssize_t ignored = write(t->virtio->queues[q].kick_fd, &one, sizeof(one));
        (void)ignored;
    }
}

static void bar_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t size, bool is_write)
{
    struct vmm_virtio_pci *t = opaque;
    struct vmm_virtio *v = t->virtio;
    uint64_t region = offset & ~(uint64_t)(REGION - 1), at = offset & (REGION - 1);
    if (size > 8 || (region != BAR_MSIX && region != BAR_MSIX + REGION && at + size > REGION))
        goto ignore;
    switch (region) {
    case BAR_COMMON:
        if (at + size > COMMON_SIZE)
            goto ignore;
        if (is_write) {
            common_write(t, (uint32_t)at, size, get_le(data, size));
        } else {
            uint8_t img[COMMON_SIZE];
            pthread_mutex_lock(&v->lock);
            common_image(t, img);
            pthread_mutex_unlock(&v->lock);
            memcpy(data, img + at, size);
        }
        return;
    case BAR_ISR:
        if (is_write)
            return;
        memset(data, 0, size);
        /* Reading the ISR acknowledges it. */
        data[0] = at == 0 ? atomic_exchange(&t->isr, 0) : 0;
        return;
    case BAR_DEVICE:
        v->ops->config_access(v, (uint32_t)at, data, size, is_write);
        return;
    case BAR_NOTIFY:
        if (is_write)
            notify(t, at);
        else
            memset(data, 0, size);
        return;
    case BAR_MSIX:
    case BAR_MSIX + REGION:
        vmm_msix_table_io(t->msix, offset - BAR_MSIX, data, size, is_write);
        return;
    case BAR_PBA:
        vmm_msix_pba_io(t->msix, at, data, size, is_write);
        return;
    default:
        break;
    }
ignore:
    if (!is_write)
        memset(data, 0xff, size);
}

/* Each queue's notify address kicks its eventfd inside KVM. Registered for
 * writes of any width: KVM's fast MMIO path then signals without decoding
 * the guest's instruction, which on a nested host is most of an exit's
 * cost. A KVM without it takes the 2-byte write the driver does. */
static int ioeventfd(struct vmm_virtio_pci *t, unsigned i, uint64_t base, bool on)
{
    struct kvm_ioeventfd io = {
        .addr = base + BAR_NOTIFY + (uint64_t)i * NOTIFY_MULTIPLIER,
        .fd = t->virtio->queues[i].kick_fd,
        .flags = on ? 0 : KVM_IOEVENTFD_FLAG_DEASSIGN,
    };
    for (io.len = 0; io.len <= 2; io.len += 2)
        if (ioctl(t->vm->vm_fd, KVM_IOEVENTFD, &io) == 0)
            return 0;
    return -errno;
}

static void ioeventfds(struct vmm_virtio_pci *t, uint64_t base, bool on)
{
    for (unsigned i = 0; i < t->virtio->nqueues; i++) {
        /* Without it the notify handler still kicks, through an exit. */
        if (ioeventfd(t, i, base, on) < 0 && on) {
            for (unsigned j = 0; j < i; j++)
                ioeventfd(t, j, base, false);
            return;
        }
    }
    t->ioeventfds = on;
    t->notify_base = base;
}

static void bar_mapped(void *opaque, unsigned bar, uint64_t address, bool on)
{
    struct vmm_virtio_pci *t = opaque;
    if (bar != 0)
        return;
    if (!on && t->ioeventfds && t->notify_base == address)
        ioeventfds(t, address, false);
    else if (on && !t->ioeventfds)
        ioeventfds(t, address, true);
}

static void config_written(void *opaque, uint32_t offset, uint32_t size)
{
    struct vmm_virtio_pci *t = opaque;
    vmm_msix_config_written(t->msix, offset, size);
}

static const struct vmm_pci_ops virtio_pci_ops = {
    .config_written = config_written,
    .bar_mapped = bar_mapped,
};

static int add_cap(struct vmm_pci_dev *dev, uint8_t type, uint32_t offset, uint32_t length, uint32_t multiplier)
{
    uint8_t cap[20] = { 0x09 /* vendor-specific */, 0, 0, type, 0 /* BAR 0 */ };
    uint8_t len = type == VIRTIO_PCI_CAP_NOTIFY_CFG ? 20 : 16;
    cap[2] = len;
    put32(cap + 8, offset);
    put32(cap + 12, length);
    put32(cap + 16, multiplier);
    uint8_t at;
    return vmm_pci_dev_add_capability(dev, cap, NULL, len, &at);
}

int vmm_virtio_pci_create(struct vmm_vm *vm, struct vmm_virtio *device, struct vmm_virtio_pci **out)
{
    struct vmm_virtio_pci *t = calloc(1, sizeof(*t));
    if (!t)
        return -ENOMEM;
    t->vm = vm;
    t->virtio = device;
    device->signal = signal_vector;
    device->vector_eventfd = vector_eventfd;
    device->transport = t;
    const struct virtio_device_ops *ops = device->ops;
    struct vmm_pci_space space = { vmm_vm_pio_bus(vm), vmm_vm_mmio_bus(vm) };
    int ret = vmm_pci_dev_create(&space, VIRTIO_PCI_VENDOR, (uint16_t)(VIRTIO_PCI_DEVICE_BASE + ops->device_id),
                                 ops->pci_class, 1, VIRTIO_PCI_VENDOR, VIRTIO_PCI_SUBSYS,
                                 &virtio_pci_ops, t, &t->pci);
    if (ret < 0)
        goto error;
    ret = vmm_pci_dev_add_bar(t->pci, 0, VMM_PCI_BAR_MEM64, BAR_SIZE, false, bar_io, t);
    if (ret < 0)
        goto error;
    /* One vector per queue plus one for configuration changes. */
    unsigned vectors = device->nqueues + 1;
    if (vectors * VMM_MSIX_ENTRY_SIZE > BAR_PBA - BAR_MSIX) {
        ret = -E2BIG;
        goto error;
    }
    if ((ret = vmm_msix_create(vm, t->pci, vectors, 0, BAR_MSIX, BAR_PBA, &t->msix)) < 0 ||
        (ops->external_queues && (ret = vmm_msix_hand_out(t->msix)) < 0) ||
        (ret = add_cap(t->pci, VIRTIO_PCI_CAP_COMMON_CFG, BAR_COMMON, COMMON_SIZE, 0)) < 0 ||
        (ret = add_cap(t->pci, VIRTIO_PCI_CAP_ISR_CFG, BAR_ISR, 1, 0)) < 0 ||
        (ret = add_cap(t->pci, VIRTIO_PCI_CAP_DEVICE_CFG, BAR_DEVICE, REGION, 0)) < 0 ||
        (ret = add_cap(t->pci, VIRTIO_PCI_CAP_NOTIFY_CFG, BAR_NOTIFY, device->nqueues * NOTIFY_MULTIPLIER,
                       NOTIFY_MULTIPLIER)) < 0)
        goto error;
    *out = t;
    return 0;
error:
    vmm_virtio_pci_destroy(t);
    return ret;
}

_Static_assert(sizeof(struct vmm_virtio_pci_state) == 7808, "virtio state layout changed: bump VMM_VIRTIO_STATE_VERSION");

int vmm_virtio_pci_save(struct vmm_virtio_pci *t, struct vmm_virtio_pci_state *out)
{
    struct vmm_virtio *v = t->virtio;
    if (v->ops->unsaveable)
        return -ENOTSUP;
    if (v->nqueues > VMM_VIRTIO_STATE_MAX_QUEUES)
        return -E2BIG;
    memset(out, 0, sizeof(*out));
    virtio_save(v, out);
    pthread_mutex_lock(&v->lock);
    out->device_feature_select = t->device_feature_select;
    out->driver_feature_select = t->driver_feature_select;
    out->queue_select = t->queue_select;
    pthread_mutex_unlock(&v->lock);
    out->isr = atomic_load(&t->isr);
    vmm_pci_dev_save_config(t->pci, out->config);
    return vmm_msix_save(t->msix, out->msix_table, out->msix_pba, v->nqueues + 1);
}

int vmm_virtio_pci_restore(struct vmm_virtio_pci *t, const struct vmm_virtio_pci_state *in)
{
    struct vmm_virtio *v = t->virtio;
    if (v->ops->unsaveable)
        return -ENOTSUP;
    if (in->device_id != v->ops->device_id || in->nqueues != v->nqueues)
        return -ENODEV;
    if (v->nqueues > VMM_VIRTIO_STATE_MAX_QUEUES)
        return -E2BIG; /* a state no snapshot of this VMM has: its arrays hold fewer */
    int ret = vmm_msix_restore(t->msix, in->msix_table, in->msix_pba, v->nqueues + 1);
    if (ret < 0)
        return ret;
    /* The BAR's place and MSI-X enable: ioeventfds and routes follow. */
    if ((ret = vmm_pci_dev_restore_config(t->pci, in->config)) < 0)
        return ret;
    struct vmm_virtio_pci_state checked = *in;
    checked.config_vector = valid_vector(t, in->config_vector);
    for (unsigned i = 0; i < v->nqueues; i++)
        checked.queues[i].vector = valid_vector(t, in->queues[i].vector);
    pthread_mutex_lock(&v->lock);
    t->device_feature_select = in->device_feature_select;
    t->driver_feature_select = in->driver_feature_select;
    t->queue_select = in->queue_select;
    pthread_mutex_unlock(&v->lock);
    atomic_store(&t->isr, in->isr);
    virtio_restore(v, &checked);
    return 0;
}

struct vmm_pci_dev *vmm_virtio_pci_function(struct vmm_virtio_pci *t) { return t->pci; }

int vmm_virtio_pci_start(struct vmm_virtio_pci *t, vmm_vcpu_thread_init_fn init, void *opaque)
{
    return virtio_start(t->virtio, init, opaque);
}

void vmm_virtio_pci_stop(struct vmm_virtio_pci *t) { virtio_stop(t->virtio); }

void vmm_virtio_pci_pause(struct vmm_virtio_pci *t) { virtio_pause(t->virtio); }

void vmm_virtio_pci_resume(struct vmm_virtio_pci *t) { virtio_resume(t->virtio); }

uint8_t vmm_virtio_pci_status(struct vmm_virtio_pci *t)
{
    pthread_mutex_lock(&t->virtio->lock);
    uint8_t status = t->virtio->status;
    pthread_mutex_unlock(&t->virtio->lock);
    return status;
}

void vmm_virtio_pci_destroy(struct vmm_virtio_pci *t)
{
    if (!t)
        return;
    struct vmm_virtio *v = t->virtio;
    virtio_stop(v);
    if (t->ioeventfds)
        ioeventfds(t, t->notify_base, false);
    vmm_pci_dev_destroy(t->pci);
    vmm_msix_destroy(t->msix);
    virtio_destroy(v);
    if (v->ops->destroy)
        v->ops->destroy(v);
    free(t);
}
