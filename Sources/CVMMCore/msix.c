/* MSI-X: see vmm_msix.h. */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "vmm_gsi.h"
#include "vmm_irq.h"
#include "vmm_msix.h"
#include "vmm_pci.h"

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
};

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); p[2] = (uint8_t)(v >> 16); p[3] = (uint8_t)(v >> 24);
}

int vmm_msix_create(struct vmm_vm *vm, struct vmm_pci_dev *dev, unsigned vectors, unsigned bar,
                    uint32_t table_offset, uint32_t pba_offset, struct vmm_msix **out)
{
    if (vectors == 0 || vectors > VMM_MSIX_MAX_VECTORS || bar >= VMM_PCI_BARS ||
        (table_offset | pba_offset) & 7)
        return -EINVAL;
    struct vmm_msix *m = calloc(1, sizeof(*m));
    if (!m)
        return -ENOMEM;
    pthread_mutex_init(&m->lock, NULL);
    m->vm = vm;
    m->dev = dev;
    m->count = vectors;
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
        if ((ret = vmm_irq_create(vm, gsi, &m->vectors[i].irq)) < 0) {
            vmm_gsi_free(vm, gsi);
            goto error;
        }
    }
    uint8_t body[12] = { PCI_CAP_ID_MSIX, 0 };
    uint8_t wmask[12] = { 0 };
    body[2] = (uint8_t)(vectors - 1);
    body[3] = (uint8_t)((vectors - 1) >> 8);
    wmask[3] = (CTRL_ENABLE | CTRL_FMASK) >> 8;
    put32(body + 4, table_offset | bar);
    put32(body + 8, pba_offset | bar);
    if ((ret = vmm_pci_dev_add_capability(dev, body, wmask, sizeof(body), &m->cap)) < 0)
        goto error;
    *out = m;
    return 0;
error:
    vmm_msix_destroy(m);
    return ret;
}

void vmm_msix_destroy(struct vmm_msix *m)
{
    if (!m)
        return;
    for (unsigned i = 0; m->vectors && i < m->count; i++) {
        struct vmm_irq *irq = &m->vectors[i].irq;
        if (irq->eventfd >= 0) {
            uint32_t gsi = irq->gsi;
            vmm_irq_release(m->vm, irq);
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

/* An unmasked vector gets its route, then what was pending fires. */
static void unmasked(struct vmm_msix *m, unsigned v)
{
    struct msix_vector *vec = &m->vectors[v];
    route(vec, m, v);
    if (pending(m, v) && vec->routed) {
        set_pending(m, v, false);
        vmm_irq_trigger(&vec->irq);
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
    m->enabled = ctrl & CTRL_ENABLE;
    m->fmask = ctrl & CTRL_FMASK;
    for (unsigned v = 0; v < m->count; v++)
        if (!masked(m, v))
            unmasked(m, v);
    pthread_mutex_unlock(&m->lock);
}

int vmm_msix_signal(struct vmm_msix *m, unsigned v)
{
    if (v >= m->count)
        return -EINVAL;
    pthread_mutex_lock(&m->lock);
    if (masked(m, v) || !m->vectors[v].routed)
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
