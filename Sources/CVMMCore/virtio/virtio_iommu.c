/* virtio-iommu (virtio 1.2 §5.13): the guest's ATTACH, DETACH, MAP, UNMAP
 * and PROBE requests on queue 0, carried out on the translation state
 * (iommu/iommu.c); faults go back on queue 1. */
#include <errno.h>
#include <linux/virtio_ids.h>
#include <linux/virtio_iommu.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "common/sparse.h"
#include "iommu/iommu_internal.h"
#include "virtio/virtio_dev.h"

#define REQUEST_QUEUE 0
#define EVENT_QUEUE 1
/* Room for the MSI doorbell's reserved region and a NONE terminator. */
#define PROBE_SIZE 64u

/* x86's MSI doorbell: device writes there are interrupts, never DMA, so
 * the guest must not hand out IOVAs in it (nor, lacking this, take
 * Arm's default window at 0x8000000 for it). */
#define MSI_FIRST 0xfee00000ull
#define MSI_LAST  0xfeefffffull

struct virtio_iommu {
    struct vmm_virtio v;
    struct vmm_iommu iommu;
    struct virtio_iommu_config config;
    struct vmm_virtq_chain chain;
};

static struct virtio_iommu *iommu_of(struct vmm_virtio *v) { return (struct virtio_iommu *)v; }

static void config_access(struct vmm_virtio *v, uint32_t offset, uint8_t *data, uint32_t size, bool is_write)
{
    /* Read-only: `bypass` is writable only with VIRTIO_IOMMU_F_BYPASS_CONFIG. */
    if (is_write)
        return;
    const uint8_t *config = (const uint8_t *)&iommu_of(v)->config;
    memset(data, 0, size);
    if (offset < sizeof(struct virtio_iommu_config))
        memcpy(data, config + offset, size < sizeof(struct virtio_iommu_config) - offset
                                          ? size : sizeof(struct virtio_iommu_config) - offset);
}

/* PROBE's answer: the properties of every endpoint are the same here. */
static void probe_properties(uint8_t out[PROBE_SIZE])
{
    memset(out, 0, PROBE_SIZE);
    struct virtio_iommu_probe_resv_mem resv = {
        .head = { .type = VIRTIO_IOMMU_PROBE_T_RESV_MEM,
                  .length = sizeof(resv) - sizeof(struct virtio_iommu_probe_property) },
        .subtype = VIRTIO_IOMMU_RESV_MEM_T_MSI,
        .start = MSI_FIRST,
        .end = MSI_LAST,
    };
    memcpy(out, &resv, sizeof(resv));
}

/* The request's status (and PROBE's properties) into the writable part,
 * whose last four bytes are the tail the driver reads. */
static bool serve_request(struct vmm_virtio *v, unsigned q, const struct vmm_virtq_chain *c, uint32_t *written)
{
    struct vmm_iommu *m = &iommu_of(v)->iommu;
    (void)q;
    union {
        struct virtio_iommu_req_head head;
        struct virtio_iommu_req_attach attach;
        struct virtio_iommu_req_detach detach;
        struct virtio_iommu_req_map map;
        struct virtio_iommu_req_unmap unmap;
        struct virtio_iommu_req_probe probe;
    } req;
    memset(&req, 0, sizeof(req));
    uint64_t got = vmm_virtq_read(c, 0, &req, sizeof(req));
    struct virtio_iommu_req_tail tail = { .status = VIRTIO_IOMMU_S_INVAL };
    uint64_t tail_at = c->writable - sizeof(tail);
    *written = 0;
    if (c->writable < sizeof(tail))
        return true; /* nowhere to answer: dropped, the driver's loss */
    switch (got < sizeof(req.head) ? 0 : req.head.type) {
    case VIRTIO_IOMMU_T_ATTACH:
        /* ATTACH_F_BYPASS needs VIRTIO_IOMMU_F_BYPASS_CONFIG, not offered. */
        if (got >= offsetof(struct virtio_iommu_req_attach, tail) && req.attach.flags == 0)
            tail.status = iommu_attach(m, req.attach.domain, req.attach.endpoint);
        break;
    case VIRTIO_IOMMU_T_DETACH:
        if (got >= offsetof(struct virtio_iommu_req_detach, tail))
            tail.status = iommu_detach(m, req.detach.domain, req.detach.endpoint);
        break;
    case VIRTIO_IOMMU_T_MAP:
        if (got >= offsetof(struct virtio_iommu_req_map, tail))
            tail.status = iommu_map(m, req.map.domain, req.map.virt_start, req.map.virt_end, req.map.phys_start,
                                    req.map.flags);
        break;
    case VIRTIO_IOMMU_T_UNMAP:
        if (got >= offsetof(struct virtio_iommu_req_unmap, tail))
            tail.status = iommu_unmap(m, req.unmap.domain, req.unmap.virt_start, req.unmap.virt_end);
        break;
    case VIRTIO_IOMMU_T_PROBE:
        if (got < offsetof(struct virtio_iommu_req_probe, properties) || tail_at < PROBE_SIZE)
            break;
        tail.status = iommu_has_endpoint(m, req.probe.endpoint) ? VIRTIO_IOMMU_S_OK : VIRTIO_IOMMU_S_NOENT;
        if (tail.status == VIRTIO_IOMMU_S_OK) {
            uint8_t properties[PROBE_SIZE];
            probe_properties(properties);
            vmm_virtq_write(c, tail_at - PROBE_SIZE, properties, PROBE_SIZE);
        }
        break;
    default:
        tail.status = VIRTIO_IOMMU_S_UNSUPP;
        break;
    }
    vmm_virtq_write(c, tail_at, &tail, sizeof(tail));
    *written = (uint32_t)c->writable;
    return true;
}

/* Each fault kept into a buffer of the event queue, while it has some. */
static void deliver_faults(struct vmm_virtio *v)
{
    struct virtio_iommu *d = iommu_of(v);
    struct vmm_virtq *q = &v->queues[EVENT_QUEUE].vq;
    unsigned done = 0;
    int r = 0;
    for (;;) {
        if (!iommu_fault_pending(&d->iommu) || (r = vmm_virtq_pop(q, &v->mem, &d->chain)) <= 0)
            break;
        struct iommu_fault f;
        iommu_take_fault(&d->iommu, &f); /* this thread alone takes them */
        struct virtio_iommu_fault event = {
            .reason = f.reason, .flags = f.flags, .endpoint = f.endpoint, .address = f.address };
        uint64_t n = vmm_virtq_write(&d->chain, 0, &event, sizeof(event));
        vmm_virtq_push(q, d->chain.head, (uint32_t)n);
        done++;
    }
    if (done)
        virtio_queue_signal(v, EVENT_QUEUE);
    if (r < 0)
        virtio_fail(v, EVENT_QUEUE, r);
}

static void queue_kick(struct vmm_virtio *v, unsigned q)
{
    if (q == REQUEST_QUEUE)
        virtio_serve_queue(v, q, &iommu_of(v)->chain, serve_request);
    else
        deliver_faults(v);
}

static void reset(struct vmm_virtio *v) { iommu_detach_all(&iommu_of(v)->iommu); }

static void destroy(struct vmm_virtio *v)
{
    iommu_destroy(&iommu_of(v)->iommu);
    vmm_sparse_free(v);
}

static const struct virtio_device_ops iommu_ops = {
    .device_id = VIRTIO_ID_IOMMU,
    .pci_class = 0x088000, /* system peripheral, other */
    .config_access = config_access,
    .queue_kick = queue_kick,
    .reset = reset,
    /* The guest's domains and mappings are not in a device state. */
    .unsaveable = true,
    .destroy = destroy,
};

int vmm_virtio_iommu_create(struct vmm_vm *vm, unsigned address_width, struct vmm_virtio **out)
{
    struct virtio_iommu *d = vmm_sparse_alloc(sizeof(*d));
    if (!d)
        return -ENOMEM;
    uint64_t features = 1ull << VIRTIO_IOMMU_F_INPUT_RANGE | 1ull << VIRTIO_IOMMU_F_MAP_UNMAP |
                        1ull << VIRTIO_IOMMU_F_PROBE;
    int ret = virtio_init(&d->v, vm, &iommu_ops, "virtio-iommu", features, 2, 256);
    if (ret == 0)
        ret = iommu_init(&d->iommu, &d->v.mem, address_width, d->v.queues[EVENT_QUEUE].kick_fd);
    if (ret < 0) {
        virtio_destroy(&d->v);
        vmm_sparse_free(d);
        return ret;
    }
    d->config = (struct virtio_iommu_config){
        /* Any power of two from 4 KiB: the guest maps large ranges whole. */
        .page_size_mask = ~0xfffull,
        .input_range = { .start = 0, .end = d->iommu.input_last },
        .domain_range = { .start = 0, .end = UINT32_MAX },
        .probe_size = PROBE_SIZE,
    };
    *out = &d->v;
    return 0;
}

int vmm_iommu_endpoint_add(struct vmm_virtio *iommu, uint32_t id, int container, struct vmm_iommu_endpoint **out)
{
    if (iommu->ops != &iommu_ops)
        return -EINVAL;
    return iommu_endpoint_add(&iommu_of(iommu)->iommu, id, container, out);
}

void vmm_virtio_set_iommu(struct vmm_virtio *device, struct vmm_iommu_endpoint *ep)
{
    device->mem.iommu = ep;
    device->features |= 1ull << VIRTIO_F_ACCESS_PLATFORM;
}
