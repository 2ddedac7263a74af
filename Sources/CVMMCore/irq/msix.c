/* MSI-X: see vmm_msix.h. */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "irq/vmm_gsi.h"
#include "irq/vmm_irq.h"
#include "irq/vmm_msix.h"
#include "pci/vmm_pci.h"

#define PCI_CAP_ID_MSIX 0x11
#define CTRL_ENABLE 0x8000
#define CTRL_FMASK 0x4000
#define ENTRY_MASKED 0x1

struct msix_entry {
    uint32_t addr_lo, addr_hi, data, ctrl;
};

struct msix_vector {
    struct vmm_irq irq;  /* eventfd bound to its GSI */
    bool routed;         /* the GSI route matches the entry */
    bool attached;       /* external: the eventfd is attached to KVM */
};

struct vmm_msix {
    pthread_mutex_t lock;
    struct vmm_vm *vm;
    struct vmm_pci_dev *dev;
    uint8_t cap;
    unsigned count;
    bool enabled, fmask;
    struct msix_entry *table;
    uint64_t *pba;
    struct msix_vector *vectors;
    /* An assigned device's: VFIO signals, masking detaches. */
    bool external;
    vmm_msix_enable_fn enable_fn;
    void *enable_opaque;
};

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); p[2] = (uint8_t)(v >> 16); p[3] = (uint8_t)(v >> 24);
}

/* The table, PBA and one GSI and eventfd per vector; `external`: the
 * eventfds start detached, as every vector starts masked. */
static int msix_alloc(struct vmm_vm *vm, struct vmm_pci_dev *dev, unsigned vectors, bool external,
                      struct vmm_msix **out)
{
    struct vmm_msix *m = calloc(1, sizeof(*m));
    if (!m)
        return -ENOMEM;
    pthread_mutex_init(&m->lock, NULL);
    m->vm = vm;
    m->dev = dev;
    m->count = vectors;
    m->external = external;
    m->table = calloc(vectors, sizeof(*m->table));
    m->pba = calloc((vectors + 63) / 64, sizeof(uint64_t));
    m->vectors = calloc(vectors, sizeof(*m->vectors));
    int ret = -ENOMEM;
    if (!m->table || !m->pba || !m->vectors)
        goto error;
    for (unsigned i = 0; i < vectors; i++) {
        m->table[i].ctrl = ENTRY_MASKED;
        m->vectors[i].irq.eventfd = -1;
    }
    for (unsigned i = 0; i < vectors; i++) {
        uint32_t gsi;
        if ((ret = vmm_gsi_alloc(vm, &gsi)) < 0)
            goto error;
        struct vmm_irq *irq = &m->vectors[i].irq;
        if (external) {
            int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
            ret = fd < 0 ? -errno : 0;
            *irq = (struct vmm_irq){ .eventfd = fd, .gsi = gsi };
        } else {
            ret = vmm_irq_create(vm, gsi, irq);
        }
        if (ret < 0) {
            irq->eventfd = -1;
            vmm_gsi_free(vm, gsi);
            goto error;
        }
        m->vectors[i].attached = !external;
    }
    *out = m;
    return 0;
error:
    vmm_msix_destroy(m);
    return ret;
}

int vmm_msix_attach(struct vmm_vm *vm, struct vmm_pci_dev *dev, uint8_t cap, unsigned vectors,
                    vmm_msix_enable_fn enable, void *opaque, struct vmm_msix **out)
{
    if (vectors == 0 || vectors > VMM_MSIX_MAX_VECTORS)
        return -EINVAL;
    struct vmm_msix *m;
    int ret = msix_alloc(vm, dev, vectors, true, &m);
    if (ret < 0)
        return ret;
    m->cap = cap;
    m->enable_fn = enable;
    m->enable_opaque = opaque;
    /* The guest's view of the capability: enable and function mask are
     * its to write; nothing of it reaches the device (VFIO enables MSI-X
     * there when the vectors are handed over). */
    uint8_t *cfg = vmm_pci_dev_config_bytes(dev);
    cfg[cap + 3] &= (uint8_t)~((CTRL_ENABLE | CTRL_FMASK) >> 8);
    const uint8_t wmask[4] = { 0, 0, 0, (CTRL_ENABLE | CTRL_FMASK) >> 8 };
    vmm_pci_dev_set_wmask(dev, cap, wmask, sizeof(wmask));
    vmm_pci_dev_set_passthrough(dev, cap, 12, false);
    *out = m;
    return 0;
}

int vmm_msix_create(struct vmm_vm *vm, struct vmm_pci_dev *dev, unsigned vectors, unsigned bar,
                    uint32_t table_offset, uint32_t pba_offset, struct vmm_msix **out)
{
    if (vectors == 0 || vectors > VMM_MSIX_MAX_VECTORS || bar >= VMM_PCI_BARS ||
        (table_offset | pba_offset) & 7)
        return -EINVAL;
    struct vmm_msix *m;
    int ret = msix_alloc(vm, dev, vectors, false, &m);
    if (ret < 0)
        return ret;
    uint8_t body[12] = { PCI_CAP_ID_MSIX, 0 };
    uint8_t wmask[12] = { 0 };
    body[2] = (uint8_t)(vectors - 1);
    body[3] = (uint8_t)((vectors - 1) >> 8);
    wmask[3] = (CTRL_ENABLE | CTRL_FMASK) >> 8;
    put32(body + 4, table_offset | bar);
    put32(body + 8, pba_offset | bar);
    if ((ret = vmm_pci_dev_add_capability(dev, body, wmask, sizeof(body), &m->cap)) < 0) {
        vmm_msix_destroy(m);
        return ret;
    }
    *out = m;
    return 0;
}

void vmm_msix_destroy(struct vmm_msix *m)
{
    if (!m)
        return;
    for (unsigned i = 0; m->vectors && i < m->count; i++) {
        struct msix_vector *vec = &m->vectors[i];
        if (vec->irq.eventfd >= 0) {
            uint32_t gsi = vec->irq.gsi;
            if (vec->attached)
                vmm_irq_detach(m->vm, &vec->irq);
            close(vec->irq.eventfd);
            vmm_gsi_free(m->vm, gsi);
        }
    }
    free(m->vectors);
    free(m->pba);
    free(m->table);
    pthread_mutex_destroy(&m->lock);
    free(m);
}

static bool pending(const struct vmm_msix *m, unsigned v) { return m->pba[v / 64] >> (v % 64) & 1; }
static void set_pending(struct vmm_msix *m, unsigned v, bool on)
{
    if (on)
        m->pba[v / 64] |= 1ull << (v % 64);
    else
        m->pba[v / 64] &= ~(1ull << (v % 64));
}

static bool masked(const struct vmm_msix *m, unsigned v)
{
    return !m->enabled || m->fmask || (m->table[v].ctrl & ENTRY_MASKED);
}

/* Routes are committed where the guest unmasks or reprograms a vector (a
 * vCPU thread), never on a device's signalling path. Lock held. */
static void route(struct msix_vector *vec, struct vmm_msix *m, unsigned v)
{
    if (vec->routed)
        return;
    const struct msix_entry *e = &m->table[v];
    vec->routed = vmm_gsi_set_msi(m->vm, vec->irq.gsi, (uint64_t)e->addr_hi << 32 | e->addr_lo,
                                  e->data) == 0;
}

/* An unmasked vector gets its route, then what was pending fires: for an
 * assigned device, by attaching its eventfd (KVM injects what it counted). */
static void unmasked(struct vmm_msix *m, unsigned v)
{
    struct msix_vector *vec = &m->vectors[v];
    route(vec, m, v);
    if (m->external) {
        if (vec->routed && !vec->attached)
            vec->attached = vmm_irq_attach(m->vm, &vec->irq) == 0;
        return;
    }
    if (pending(m, v) && vec->routed) {
        set_pending(m, v, false);
        vmm_irq_trigger(&vec->irq);
    }
}

/* An assigned device's vector the guest masks stops reaching KVM. */
static void masked_now(struct vmm_msix *m, unsigned v)
{
    struct msix_vector *vec = &m->vectors[v];
    if (m->external && vec->attached) {
        vmm_irq_detach(m->vm, &vec->irq);
        vec->attached = false;
    }
}

void vmm_msix_table_io(struct vmm_msix *m, uint64_t offset, uint8_t *data, uint32_t size, bool is_write)
{
    /* Dword or qword accesses, naturally aligned, inside the table. */
    if ((size != 4 && size != 8) || (offset & (size - 1)) ||
        offset + size > (uint64_t)m->count * VMM_MSIX_ENTRY_SIZE) {
        if (!is_write)
            memset(data, 0xff, size);
        return;
    }
    pthread_mutex_lock(&m->lock);
    for (uint32_t done = 0; done < size; done += 4) {
        unsigned v = (unsigned)((offset + done) / VMM_MSIX_ENTRY_SIZE);
        unsigned word = (unsigned)((offset + done) % VMM_MSIX_ENTRY_SIZE) / 4;
        uint32_t *field = &m->table[v].addr_lo + word;
        if (!is_write) {
            memcpy(data + done, field, 4);
            continue;
        }
        uint32_t value;
        memcpy(&value, data + done, 4);
        if (word == 3) {
            *field = value & ENTRY_MASKED;
        } else if (*field != value) {
            *field = value;
            m->vectors[v].routed = false;
        }
        if (is_write && !masked(m, v))
            unmasked(m, v);
        else if (is_write)
            masked_now(m, v);
    }
    pthread_mutex_unlock(&m->lock);
}

void vmm_msix_pba_io(struct vmm_msix *m, uint64_t offset, uint8_t *data, uint32_t size, bool is_write)
{
    /* Read-only; writes are ignored, as the spec allows. */
    if (is_write)
        return;
    uint64_t bytes = (uint64_t)(m->count + 63) / 64 * 8;
    pthread_mutex_lock(&m->lock);
    for (uint32_t i = 0; i < size; i++)
        data[i] = offset + i < bytes ? ((const uint8_t *)m->pba)[offset + i] : 0;
    pthread_mutex_unlock(&m->lock);
}

void vmm_msix_config_written(struct vmm_msix *m, uint32_t offset, uint32_t size)
{
    uint32_t ctrl_at = m->cap + 2u;
    if (offset >= ctrl_at + 2 || offset + size <= ctrl_at)
        return;
    const uint8_t *cfg = vmm_pci_dev_config_bytes(m->dev);
    uint16_t ctrl = (uint16_t)(cfg[ctrl_at] | cfg[ctrl_at + 1] << 8);
    pthread_mutex_lock(&m->lock);
    bool was_enabled = m->enabled;
    m->enabled = ctrl & CTRL_ENABLE;
    m->fmask = ctrl & CTRL_FMASK;
    if (m->enable_fn && was_enabled != m->enabled)
        m->enable_fn(m->enable_opaque, m->enabled);
    for (unsigned v = 0; v < m->count; v++) {
        if (!masked(m, v))
            unmasked(m, v);
        else
            masked_now(m, v);
    }
    pthread_mutex_unlock(&m->lock);
}

int vmm_msix_hand_out(struct vmm_msix *m)
{
    pthread_mutex_lock(&m->lock);
    for (unsigned v = 0; v < m->count; v++) {
        if (m->vectors[v].attached && masked(m, v)) {
            vmm_irq_detach(m->vm, &m->vectors[v].irq);
            m->vectors[v].attached = false;
        }
    }
    m->external = true;
    pthread_mutex_unlock(&m->lock);
    return 0;
}

int vmm_msix_signal(struct vmm_msix *m, unsigned v)
{
    if (v >= m->count)
        return -EINVAL;
    pthread_mutex_lock(&m->lock);
    /* Handed out: the eventfd counts while detached, KVM delivers on attach. */
    if (m->external)
        vmm_irq_trigger(&m->vectors[v].irq);
    else if (masked(m, v) || !m->vectors[v].routed)
        set_pending(m, v, true);
    else
        vmm_irq_trigger(&m->vectors[v].irq);
    pthread_mutex_unlock(&m->lock);
    return 0;
}

bool vmm_msix_enabled(struct vmm_msix *m)
{
    pthread_mutex_lock(&m->lock);
    bool on = m->enabled;
    pthread_mutex_unlock(&m->lock);
    return on;
}

unsigned vmm_msix_vector_count(const struct vmm_msix *m) { return m->count; }

int vmm_msix_eventfd(const struct vmm_msix *m, unsigned v)
{
    return v < m->count ? m->vectors[v].irq.eventfd : -1;
}

int vmm_msix_save(struct vmm_msix *m, uint32_t *table, uint64_t *pba, unsigned count)
{
    if (count != m->count)
        return -EINVAL;
    pthread_mutex_lock(&m->lock);
    memcpy(table, m->table, count * sizeof(*m->table));
    memcpy(pba, m->pba, (count + 63) / 64 * sizeof(uint64_t));
    pthread_mutex_unlock(&m->lock);
    return 0;
}

int vmm_msix_restore(struct vmm_msix *m, const uint32_t *table, const uint64_t *pba, unsigned count)
{
    if (count != m->count)
        return -EINVAL;
    pthread_mutex_lock(&m->lock);
    memcpy(m->table, table, count * sizeof(*m->table));
    memcpy(m->pba, pba, (count + 63) / 64 * sizeof(uint64_t));
    for (unsigned v = 0; v < count; v++) {
        m->table[v].ctrl &= ENTRY_MASKED;
        m->vectors[v].routed = false;
    }
    pthread_mutex_unlock(&m->lock);
    return 0;
}
