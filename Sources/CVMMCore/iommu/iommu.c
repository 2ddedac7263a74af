/* The virtual IOMMU's domains, mappings and endpoints, and the VFIO DMA
 * mappings that mirror them for assigned devices: see vmm_iommu.h. */
#include <errno.h>
#include <linux/vfio.h>
#include <linux/virtio_iommu.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "iommu/iommu_internal.h"

#define GRANULE 4096ull
#define ACCESS (VIRTIO_IOMMU_MAP_F_READ | VIRTIO_IOMMU_MAP_F_WRITE)

int iommu_init(struct vmm_iommu *m, const struct vmm_gmem *mem, unsigned address_width, int fault_kick)
{
    if (address_width < 12 || address_width > 64)
        return -EINVAL;
    m->mem = mem;
    m->input_last = address_width == 64 ? UINT64_MAX : (1ull << address_width) - 1;
    m->fault_kick = fault_kick;
    int ret = pthread_rwlock_init(&m->lock, NULL);
    if (ret)
        return -ret;
    pthread_mutex_init(&m->fault_lock, NULL);
    return 0;
}

static void free_domain(struct vmm_iommu *m, struct iommu_domain *d)
{
    for (unsigned i = 0; i < m->ndomains; i++) {
        if (m->domains[i] == d) {
            m->domains[i] = m->domains[--m->ndomains];
            break;
        }
    }
    m->mappings -= d->count;
    free(d->maps);
    free(d);
}

void iommu_destroy(struct vmm_iommu *m)
{
    /* Endpoints left are the caller's bug; their domains go all the same. */
    while (m->ndomains)
        free_domain(m, m->domains[0]);
    pthread_rwlock_destroy(&m->lock);
    pthread_mutex_destroy(&m->fault_lock);
}

static uint64_t mapping_bytes(const struct iommu_mapping *mp) { return mp->last - mp->iova + 1; }

/* VFIO: an assigned endpoint's container mirrors its domain. A mapping
 * allowing no access pins nothing and has nothing to mirror. */
static int vfio_map(const struct vmm_iommu *m, int container, const struct iommu_mapping *mp)
{
    if (!(mp->flags & ACCESS))
        return 0;
    uint64_t size = mapping_bytes(mp);
    void *hva = vmm_gmem_hva(m->mem, mp->gpa, size);
    if (!hva)
        return -EFAULT;
    struct vfio_iommu_type1_dma_map map = {
        .argsz = sizeof(map),
        .flags = (mp->flags & VIRTIO_IOMMU_MAP_F_READ ? VFIO_DMA_MAP_FLAG_READ : 0) |
                 (mp->flags & VIRTIO_IOMMU_MAP_F_WRITE ? VFIO_DMA_MAP_FLAG_WRITE : 0),
        .vaddr = (uint64_t)(uintptr_t)hva,
        .iova = mp->iova,
        .size = size,
    };
    return ioctl(container, VFIO_IOMMU_MAP_DMA, &map) < 0 ? -errno : 0;
}

static void vfio_unmap(int container, const struct iommu_mapping *mp)
{
    if (!(mp->flags & ACCESS))
        return;
    struct vfio_iommu_type1_dma_unmap unmap = {
        .argsz = sizeof(unmap), .iova = mp->iova, .size = mapping_bytes(mp) };
    ioctl(container, VFIO_IOMMU_UNMAP_DMA, &unmap);
}

static uint8_t vfio_status(int error)
{
    /* The locked-memory limit or VFIO's own cap on mappings. */
    return error == -ENOMEM || error == -ENOSPC ? VIRTIO_IOMMU_S_NOMEM : VIRTIO_IOMMU_S_DEVERR;
}

static struct vmm_iommu_endpoint *find_endpoint(struct vmm_iommu *m, uint32_t id)
{
    for (unsigned i = 0; i < m->nendpoints; i++)
        if (m->endpoints[i]->id == id)
            return m->endpoints[i];
    return NULL;
}

static struct iommu_domain *find_domain(struct vmm_iommu *m, uint32_t id)
{
    for (unsigned i = 0; i < m->ndomains; i++)
        if (m->domains[i]->id == id)
            return m->domains[i];
    return NULL;
}

/* The containers of `d`'s assigned endpoints, each once (two functions of
 * one group share theirs): `n` of them into `out`. */
static unsigned containers(struct vmm_iommu *m, const struct iommu_domain *d, int *out)
{
    unsigned n = 0;
    for (unsigned i = 0; i < m->nendpoints; i++) {
        const struct vmm_iommu_endpoint *ep = m->endpoints[i];
        if (ep->domain != d || ep->container < 0)
            continue;
        bool seen = false;
        for (unsigned j = 0; j < n && !seen; j++)
            seen = out[j] == ep->container;
        if (!seen)
            out[n++] = ep->container;
    }
    return n;
}

/* Whether another endpoint of `d` shares `ep`'s container (its mappings
 * are that one's too). */
static bool container_shared(struct vmm_iommu *m, const struct vmm_iommu_endpoint *ep, const struct iommu_domain *d)
{
    for (unsigned i = 0; i < m->nendpoints; i++) {
        const struct vmm_iommu_endpoint *o = m->endpoints[i];
        if (o != ep && o->domain == d && o->container == ep->container)
            return true;
    }
    return false;
}

/* `ep` out of its domain: its container's copy of the mappings dropped,
 * the domain freed with its last endpoint. */
static void leave_domain(struct vmm_iommu *m, struct vmm_iommu_endpoint *ep)
{
    struct iommu_domain *d = ep->domain;
    if (!d)
        return;
    if (ep->container >= 0 && !container_shared(m, ep, d))
        for (uint32_t i = 0; i < d->count; i++)
            vfio_unmap(ep->container, &d->maps[i]);
    ep->domain = NULL;
    if (--d->endpoints == 0)
        free_domain(m, d);
}

uint8_t iommu_attach(struct vmm_iommu *m, uint32_t domain, uint32_t endpoint)
{
    pthread_rwlock_wrlock(&m->lock);
    uint8_t status = VIRTIO_IOMMU_S_OK;
    struct vmm_iommu_endpoint *ep = find_endpoint(m, endpoint);
    struct iommu_domain *d = find_domain(m, domain);
    if (!ep) {
        status = VIRTIO_IOMMU_S_NOENT;
        goto out;
    }
    if (d && ep->domain == d)
        goto out;
    /* Out of the old domain first, as the specification asks: its
     * mappings and the new one's would collide in the container. */
    leave_domain(m, ep);
    if (!d) {
        d = calloc(1, sizeof(*d));
        if (!d) {
            status = VIRTIO_IOMMU_S_NOMEM;
            goto out;
        }
        d->id = domain;
        m->domains[m->ndomains++] = d;
    }
    if (ep->container >= 0 && !container_shared(m, ep, d)) {
        for (uint32_t i = 0; i < d->count; i++) {
            int r = vfio_map(m, ep->container, &d->maps[i]);
            if (r < 0) {
                while (i--)
                    vfio_unmap(ep->container, &d->maps[i]);
                if (d->endpoints == 0)
                    free_domain(m, d);
                status = vfio_status(r);
                goto out;
            }
        }
    }
    ep->domain = d;
    d->endpoints++;
out:
    pthread_rwlock_unlock(&m->lock);
    return status;
}

void iommu_detach_all(struct vmm_iommu *m)
{
    pthread_rwlock_wrlock(&m->lock);
    for (unsigned i = 0; i < m->nendpoints; i++)
        leave_domain(m, m->endpoints[i]);
    pthread_rwlock_unlock(&m->lock);
}

uint8_t iommu_detach(struct vmm_iommu *m, uint32_t domain, uint32_t endpoint)
{
    pthread_rwlock_wrlock(&m->lock);
    struct vmm_iommu_endpoint *ep = find_endpoint(m, endpoint);
    struct iommu_domain *d = find_domain(m, domain);
    uint8_t status = VIRTIO_IOMMU_S_OK;
    if (!ep || !d)
        status = VIRTIO_IOMMU_S_NOENT;
    else if (ep->domain != d)
        status = VIRTIO_IOMMU_S_INVAL;
    else
        leave_domain(m, ep);
    pthread_rwlock_unlock(&m->lock);
    return status;
}

/* The first mapping that ends at or after `iova`. */
static uint32_t lower_bound(const struct iommu_domain *d, uint64_t iova)
{
    uint32_t lo = 0, hi = d->count;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (d->maps[mid].last < iova)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static uint64_t ram_bytes(const struct vmm_gmem *mem)
{
    unsigned count = vmm_gmem_count(mem);
    uint64_t total = 0;
    for (unsigned i = 0; i < count; i++)
        total += mem->regions[i].size;
    return total;
}

uint8_t iommu_map(struct vmm_iommu *m, uint32_t domain, uint64_t first, uint64_t last, uint64_t gpa, uint32_t flags)
{
    if (flags & ~ACCESS)
        return VIRTIO_IOMMU_S_INVAL; /* MMIO: no VIRTIO_IOMMU_F_MMIO offered */
    if (last < first || last > m->input_last || last - first == UINT64_MAX)
        return VIRTIO_IOMMU_S_RANGE;
    uint64_t size = last - first + 1;
    if ((first | gpa | size) & (GRANULE - 1))
        return VIRTIO_IOMMU_S_INVAL;
    /* Guest RAM only, in one region: what a device may reach. */
    if (!vmm_gmem_hva(m->mem, gpa, size))
        return VIRTIO_IOMMU_S_RANGE;
    pthread_rwlock_wrlock(&m->lock);
    uint8_t status = VIRTIO_IOMMU_S_OK;
    struct iommu_domain *d = find_domain(m, domain);
    uint32_t at = d ? lower_bound(d, first) : 0;
    if (!d) {
        status = VIRTIO_IOMMU_S_NOENT;
    } else if (at < d->count && d->maps[at].iova <= last) {
        status = VIRTIO_IOMMU_S_INVAL; /* overlaps a mapping */
    } else if (d->count == VMM_IOMMU_MAX_MAPPINGS || m->mappings == VMM_IOMMU_MAX_TOTAL ||
               size > ram_bytes(m->mem) - d->bytes) {
        status = VIRTIO_IOMMU_S_NOMEM;
    } else if (d->count == d->cap) {
        uint32_t cap = d->cap ? d->cap * 2 : 16;
        struct iommu_mapping *maps = realloc(d->maps, cap * sizeof(*maps));
        if (maps) {
            d->maps = maps;
            d->cap = cap;
        } else {
            status = VIRTIO_IOMMU_S_NOMEM;
        }
    }
    if (status != VIRTIO_IOMMU_S_OK)
        goto out;
    struct iommu_mapping mp = { first, last, gpa, flags };
    int fds[VMM_IOMMU_MAX_ENDPOINTS];
    unsigned n = containers(m, d, fds);
    for (unsigned i = 0; i < n; i++) {
        int r = vfio_map(m, fds[i], &mp);
        if (r < 0) {
            while (i--)
                vfio_unmap(fds[i], &mp);
            status = vfio_status(r);
            goto out;
        }
    }
    memmove(&d->maps[at + 1], &d->maps[at], (d->count - at) * sizeof(mp));
    d->maps[at] = mp;
    d->count++;
    m->mappings++;
    d->bytes += size;
out:
    pthread_rwlock_unlock(&m->lock);
    return status;
}

uint8_t iommu_unmap(struct vmm_iommu *m, uint32_t domain, uint64_t first, uint64_t last)
{
    if (last < first)
        return VIRTIO_IOMMU_S_RANGE;
    pthread_rwlock_wrlock(&m->lock);
    uint8_t status = VIRTIO_IOMMU_S_OK;
    struct iommu_domain *d = find_domain(m, domain);
    if (!d) {
        status = VIRTIO_IOMMU_S_NOENT;
        goto out;
    }
    uint32_t lo = lower_bound(d, first), hi = lo;
    while (hi < d->count && d->maps[hi].iova <= last)
        hi++;
    /* A mapping the range would split stays whole, and so do the rest. */
    if (lo < hi && (d->maps[lo].iova < first || d->maps[hi - 1].last > last)) {
        status = VIRTIO_IOMMU_S_RANGE;
        goto out;
    }
    if (lo == hi)
        goto out; /* nothing there: done, as the specification has it */
    int fds[VMM_IOMMU_MAX_ENDPOINTS];
    unsigned n = containers(m, d, fds);
    for (uint32_t k = lo; k < hi; k++) {
        for (unsigned i = 0; i < n; i++)
            vfio_unmap(fds[i], &d->maps[k]);
        d->bytes -= mapping_bytes(&d->maps[k]);
    }
    memmove(&d->maps[lo], &d->maps[hi], (d->count - hi) * sizeof(d->maps[0]));
    d->count -= hi - lo;
    m->mappings -= hi - lo;
    /* A table that emptied gives its memory back (it grows by doubling). */
    if (d->cap > 64 && d->count < d->cap / 4) {
        struct iommu_mapping *maps = realloc(d->maps, d->cap / 2 * sizeof(*maps));
        if (maps) {
            d->maps = maps;
            d->cap /= 2;
        }
    }
out:
    pthread_rwlock_unlock(&m->lock);
    return status;
}

bool iommu_has_endpoint(struct vmm_iommu *m, uint32_t endpoint)
{
    pthread_rwlock_rdlock(&m->lock);
    bool found = find_endpoint(m, endpoint) != NULL;
    pthread_rwlock_unlock(&m->lock);
    return found;
}

static void report_fault(struct vmm_iommu *m, uint8_t reason, uint32_t flags, uint32_t endpoint, uint64_t address)
{
    pthread_mutex_lock(&m->fault_lock);
    if (m->fault_count < VMM_IOMMU_FAULT_QUEUE) {
        unsigned slot = (m->fault_head + m->fault_count++) % VMM_IOMMU_FAULT_QUEUE;
        m->faults[slot] = (struct iommu_fault){ reason, flags, endpoint, address };
    } else {
        m->faults_dropped++;
    }
    pthread_mutex_unlock(&m->fault_lock);
    uint64_t one = 1;
    if (write(m->fault_kick, &one, sizeof(one)) < 0) {
        /* The counter is full: the thread is woken already. */
    }
}

bool iommu_fault_pending(struct vmm_iommu *m)
{
    pthread_mutex_lock(&m->fault_lock);
    bool any = m->fault_count > 0;
    pthread_mutex_unlock(&m->fault_lock);
    return any;
}

bool iommu_take_fault(struct vmm_iommu *m, struct iommu_fault *out)
{
    pthread_mutex_lock(&m->fault_lock);
    bool any = m->fault_count > 0;
    if (any) {
        *out = m->faults[m->fault_head];
        m->fault_head = (m->fault_head + 1) % VMM_IOMMU_FAULT_QUEUE;
        m->fault_count--;
    }
    pthread_mutex_unlock(&m->fault_lock);
    return any;
}

int vmm_iommu_translate(const struct vmm_iommu_endpoint *ep, uint64_t iova, uint64_t len, bool write,
                        uint64_t *gpa, uint64_t *contiguous)
{
    struct vmm_iommu *m = ep->iommu;
    uint32_t need = write ? VIRTIO_IOMMU_MAP_F_WRITE : VIRTIO_IOMMU_MAP_F_READ;
    uint8_t reason = VIRTIO_IOMMU_FAULT_R_MAPPING;
    pthread_rwlock_rdlock(&m->lock);
    const struct iommu_domain *d = ep->domain;
    uint32_t i = d ? lower_bound(d, iova) : 0;
    if (!d) {
        reason = VIRTIO_IOMMU_FAULT_R_DOMAIN;
    } else if (len && i < d->count && d->maps[i].iova <= iova && (d->maps[i].flags & need)) {
        *gpa = d->maps[i].gpa + (iova - d->maps[i].iova);
        /* Bytes from iova to the mapping's end, less one: no overflow
         * when a mapping ends at the top of the address space. */
        uint64_t span = d->maps[i].last - iova;
        /* Adjacent mappings whose guest addresses follow on extend it. */
        while (span < len - 1 && i + 1 < d->count) {
            const struct iommu_mapping *a = &d->maps[i], *b = &d->maps[i + 1];
            if (b->iova != a->last + 1 || b->gpa != a->gpa + mapping_bytes(a) || !(b->flags & need))
                break;
            span += mapping_bytes(b);
            i++;
        }
        *contiguous = span < len - 1 ? span + 1 : len;
        pthread_rwlock_unlock(&m->lock);
        return 0;
    }
    pthread_rwlock_unlock(&m->lock);
    report_fault(m, reason, (write ? VIRTIO_IOMMU_FAULT_F_WRITE : VIRTIO_IOMMU_FAULT_F_READ) | VIRTIO_IOMMU_FAULT_F_ADDRESS,
                 ep->id, iova);
    return -EFAULT;
}

int iommu_endpoint_add(struct vmm_iommu *m, uint32_t id, int container, struct vmm_iommu_endpoint **out)
{
    struct vmm_iommu_endpoint *ep = calloc(1, sizeof(*ep));
    if (!ep)
        return -ENOMEM;
    *ep = (struct vmm_iommu_endpoint){ .iommu = m, .id = id, .container = container };
    pthread_rwlock_wrlock(&m->lock);
    int ret = find_endpoint(m, id) ? -EEXIST : m->nendpoints == VMM_IOMMU_MAX_ENDPOINTS ? -ENOSPC : 0;
    if (ret == 0)
        m->endpoints[m->nendpoints++] = ep;
    pthread_rwlock_unlock(&m->lock);
    if (ret < 0)
        free(ep);
    else
        *out = ep;
    return ret;
}

void vmm_iommu_endpoint_remove(struct vmm_iommu_endpoint *ep)
{
    struct vmm_iommu *m = ep->iommu;
    pthread_rwlock_wrlock(&m->lock);
    leave_domain(m, ep);
    for (unsigned i = 0; i < m->nendpoints; i++) {
        if (m->endpoints[i] == ep) {
            m->endpoints[i] = m->endpoints[--m->nendpoints];
            break;
        }
    }
    pthread_rwlock_unlock(&m->lock);
    free(ep);
}
