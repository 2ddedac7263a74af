/* virtio-rng (virtio 1.2 §5.4): fills the guest's buffers from a host
 * entropy source, /dev/urandom unless configured otherwise. */
#include <errno.h>
#include <linux/virtio_ids.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/sparse.h"
#include "virtio/virtio_dev.h"

/* Per request, so one request cannot keep the thread in read() for long. */
#define MAX_REQUEST (64u * 1024)

struct virtio_rng {
    struct vmm_virtio v;
    int source_fd;
    struct vmm_virtq_chain chain;
};

static void config_access(struct vmm_virtio *v, uint32_t offset, uint8_t *data, uint32_t size, bool is_write)
{
    (void)v;
    (void)offset;
    if (!is_write)
        memset(data, 0, size); /* no configuration space */
}

static bool fill(struct vmm_virtio *v, unsigned q, const struct vmm_virtq_chain *c, uint32_t *written)
{
    struct virtio_rng *r = (struct virtio_rng *)v;
    (void)q;
    uint32_t total = 0;
    for (unsigned i = 0; i < c->count && total < MAX_REQUEST; i++) {
        const struct vmm_virtq_buf *b = &c->bufs[i];
        if (!b->writable)
            continue;
        uint32_t want = b->len < MAX_REQUEST - total ? b->len : MAX_REQUEST - total;
        ssize_t n;
        do {
            n = read(r->source_fd, b->hva, want);
        } while (n < 0 && errno == EINTR);
        if (n <= 0)
            break;
        total += (uint32_t)n;
        if ((uint32_t)n < want)
            break;
    }
    *written = total;
    return true;
}

static void queue_kick(struct vmm_virtio *v, unsigned qi)
{
    virtio_serve_queue(v, qi, &((struct virtio_rng *)v)->chain, fill);
}

static void destroy(struct vmm_virtio *v) { vmm_sparse_free(v); }

static const struct virtio_device_ops rng_ops = {
    .device_id = VIRTIO_ID_RNG,
    .pci_class = 0xff0000, /* unclassified */
    .config_access = config_access,
    .queue_kick = queue_kick,
    .destroy = destroy,
};

int vmm_virtio_rng_create(struct vmm_vm *vm, int source_fd, struct vmm_virtio **out)
{
    struct virtio_rng *r = vmm_sparse_alloc(sizeof(*r));
    if (!r)
        return -ENOMEM;
    r->source_fd = source_fd;
    int ret = virtio_init(&r->v, vm, &rng_ops, "virtio-rng", 0, 1, 256);
    if (ret < 0) {
        virtio_destroy(&r->v);
        vmm_sparse_free(r);
        return ret;
    }
    *out = &r->v;
    return 0;
}
