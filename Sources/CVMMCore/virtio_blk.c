/* virtio-blk (virtio 1.2 §5.2) on a raw image: read, write, flush,
 * get-id, discard and write-zeroes, one or more queues, served on the
 * device's thread with vectored I/O straight into guest memory. */
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/virtio_blk.h>
#include <linux/virtio_ids.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "virtio_dev.h"

#define SECTOR 512u
#define SEG_MAX 128u
#define DISCARD_SEGS 32u
#define MAX_DISCARD_SECTORS (UINT32_MAX / SECTOR)

struct virtio_blk {
    struct vmm_virtio v; /* first: the core's object is the device's */
    int fd;
    uint64_t size_bytes;
    bool readonly;
    char serial[VIRTIO_BLK_ID_BYTES];
    struct virtio_blk_config config;
    struct vmm_virtq_chain chain;
    struct iovec iov[VMM_VIRTQ_MAX_CHAIN];
};

static struct virtio_blk *blk_of(struct vmm_virtio *v) { return (struct virtio_blk *)v; }

static void config_access(struct vmm_virtio *v, uint32_t offset, uint8_t *data, uint32_t size, bool is_write)
{
    struct virtio_blk *b = blk_of(v);
    if (is_write)
        return; /* nothing writable: no CONFIG_WCE */
    if (offset >= sizeof(b->config) || size > sizeof(b->config) - offset) {
        memset(data, 0, size);
        return;
    }
    memcpy(data, (uint8_t *)&b->config + offset, size);
}

/* Whole transfers at `offset`, resumed after short reads or writes. */
static int transfer(int fd, struct iovec *iov, int count, uint64_t offset, bool write)
{
    while (count > 0) {
        ssize_t n = write ? pwritev(fd, iov, count, (off_t)offset) : preadv(fd, iov, count, (off_t)offset);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (n == 0)
            return -EIO;
        offset += (uint64_t)n;
        while (count > 0 && (size_t)n >= iov->iov_len) {
            n -= (ssize_t)iov->iov_len;
            iov++;
            count--;
        }
        if (count > 0) {
            iov->iov_base = (uint8_t *)iov->iov_base + n;
            iov->iov_len -= (size_t)n;
        }
    }
    return 0;
}

static bool in_bounds(const struct virtio_blk *b, uint64_t sector, uint64_t bytes)
{
    return sector <= b->size_bytes / SECTOR && bytes <= b->size_bytes - sector * SECTOR;
}

static uint8_t read_write(struct virtio_blk *b, const struct vmm_virtq_chain *c, uint64_t sector, bool write,
                          uint32_t *written)
{
    uint64_t len = write ? c->readable - sizeof(struct virtio_blk_outhdr) : c->writable - 1;
    if (write && b->readonly)
        return VIRTIO_BLK_S_IOERR;
    if (!in_bounds(b, sector, len))
        return VIRTIO_BLK_S_IOERR;
    /* A guest write is data the device reads, and the other way round. */
    int n = vmm_virtq_iov(c, !write, write ? sizeof(struct virtio_blk_outhdr) : 0, len, b->iov, VMM_VIRTQ_MAX_CHAIN);
    if (n < 0 || transfer(b->fd, b->iov, n, sector * SECTOR, write) < 0)
        return VIRTIO_BLK_S_IOERR;
    if (!write)
        *written += (uint32_t)len;
    return VIRTIO_BLK_S_OK;
}

/* Discard and write-zeroes: a list of segments after the header. */
static uint8_t ranges(struct virtio_blk *b, const struct vmm_virtq_chain *c, bool zeroes)
{
    if (b->readonly)
        return VIRTIO_BLK_S_IOERR;
    uint64_t data = c->readable - sizeof(struct virtio_blk_outhdr);
    if (data == 0 || data % sizeof(struct virtio_blk_discard_write_zeroes) ||
        data / sizeof(struct virtio_blk_discard_write_zeroes) > DISCARD_SEGS)
        return VIRTIO_BLK_S_UNSUPP;
    for (uint64_t at = 0; at < data; at += sizeof(struct virtio_blk_discard_write_zeroes)) {
        struct virtio_blk_discard_write_zeroes seg;
        vmm_virtq_read(c, sizeof(struct virtio_blk_outhdr) + at, &seg, sizeof(seg));
        uint64_t bytes = (uint64_t)seg.num_sectors * SECTOR;
        /* Discard takes no flags; write-zeroes only "may unmap". */
        if (seg.flags & ~(zeroes ? VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP : 0u))
            return VIRTIO_BLK_S_UNSUPP;
        if (!in_bounds(b, seg.sector, bytes))
            return VIRTIO_BLK_S_IOERR;
        int mode = zeroes && !(seg.flags & VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP)
                       ? FALLOC_FL_ZERO_RANGE
                       : FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE;
        if (bytes && fallocate(b->fd, mode, (off_t)(seg.sector * SECTOR), (off_t)bytes) < 0) {
            /* A discard the file system cannot do is still a discard done;
             * zeroes must be zeroes. */
            if (!zeroes)
                continue;
            return VIRTIO_BLK_S_IOERR;
        }
    }
    return VIRTIO_BLK_S_OK;
}

/* One request; returns the bytes written into the chain (data + status). */
static uint32_t handle(struct virtio_blk *b, const struct vmm_virtq_chain *c)
{
    struct virtio_blk_outhdr hdr;
    if (c->writable == 0)
        return 0; /* nowhere to put a status: nothing can be answered */
    uint32_t written = 1;
    uint8_t status;
    if (vmm_virtq_read(c, 0, &hdr, sizeof(hdr)) != sizeof(hdr)) {
        status = VIRTIO_BLK_S_IOERR;
    } else {
        switch (hdr.type) {
        case VIRTIO_BLK_T_IN:
            status = read_write(b, c, hdr.sector, false, &written);
            break;
        case VIRTIO_BLK_T_OUT:
            status = read_write(b, c, hdr.sector, true, &written);
            break;
        case VIRTIO_BLK_T_FLUSH:
            status = fdatasync(b->fd) == 0 ? VIRTIO_BLK_S_OK : VIRTIO_BLK_S_IOERR;
            break;
        case VIRTIO_BLK_T_GET_ID: {
            uint64_t n = c->writable - 1 < sizeof(b->serial) ? c->writable - 1 : sizeof(b->serial);
            written += (uint32_t)vmm_virtq_write(c, 0, b->serial, n);
            status = VIRTIO_BLK_S_OK;
            break;
        }
        case VIRTIO_BLK_T_DISCARD:
            status = ranges(b, c, false);
            break;
        case VIRTIO_BLK_T_WRITE_ZEROES:
            status = ranges(b, c, true);
            break;
        default:
            status = VIRTIO_BLK_S_UNSUPP;
            break;
        }
    }
    vmm_virtq_write(c, c->writable - 1, &status, 1);
    return written;
}

static void queue_kick(struct vmm_virtio *v, unsigned qi)
{
    struct virtio_blk *b = blk_of(v);
    struct vmm_virtq *q = &v->queues[qi].vq;
    do {
        unsigned done = 0;
        int r;
        while ((r = vmm_virtq_pop(q, &v->mem, &b->chain)) > 0) {
            vmm_virtq_push(q, b->chain.head, handle(b, &b->chain));
            done++;
        }
        if (done)
            virtio_queue_signal(v, qi);
        if (r < 0) {
            virtio_fail(v, qi, r);
            return;
        }
    } while (vmm_virtq_rearm(q));
}

static void destroy(struct vmm_virtio *v) { free(blk_of(v)); }

static const struct virtio_device_ops blk_ops = {
    .device_id = VIRTIO_ID_BLOCK,
    .pci_class = 0x018000, /* mass storage, other */
    .config_access = config_access,
    .queue_kick = queue_kick,
    .destroy = destroy,
};

int vmm_virtio_blk_create(struct vmm_vm *vm, const struct vmm_virtio_blk_config *cfg, struct vmm_virtio **out)
{
    if (cfg->fd < 0 || cfg->num_queues == 0 || cfg->queue_size < 2)
        return -EINVAL;
    struct virtio_blk *b = calloc(1, sizeof(*b));
    if (!b)
        return -ENOMEM;
    b->fd = cfg->fd;
    b->size_bytes = cfg->size_bytes;
    b->readonly = cfg->readonly;
    if (cfg->serial)
        strncpy(b->serial, cfg->serial, sizeof(b->serial));
    uint64_t features = 1ull << VIRTIO_BLK_F_SEG_MAX | 1ull << VIRTIO_BLK_F_BLK_SIZE |
                        1ull << VIRTIO_BLK_F_FLUSH | 1ull << VIRTIO_BLK_F_DISCARD |
                        1ull << VIRTIO_BLK_F_WRITE_ZEROES;
    if (cfg->readonly)
        features |= 1ull << VIRTIO_BLK_F_RO;
    if (cfg->num_queues > 1)
        features |= 1ull << VIRTIO_BLK_F_MQ;
    struct virtio_blk_config *c = &b->config;
    c->capacity = cfg->size_bytes / SECTOR;
    c->seg_max = SEG_MAX < cfg->queue_size - 2u ? SEG_MAX : cfg->queue_size - 2u;
    c->blk_size = SECTOR;
    c->num_queues = cfg->num_queues;
    c->max_discard_sectors = MAX_DISCARD_SECTORS;
    c->max_discard_seg = DISCARD_SEGS;
    c->discard_sector_alignment = 4096 / SECTOR;
    c->max_write_zeroes_sectors = MAX_DISCARD_SECTORS;
    c->max_write_zeroes_seg = DISCARD_SEGS;
    c->write_zeroes_may_unmap = 1;
    int ret = virtio_init(&b->v, vm, &blk_ops, cfg->thread_name ? cfg->thread_name : "virtio-blk",
                          features, cfg->num_queues, cfg->queue_size);
    if (ret < 0) {
        virtio_destroy(&b->v);
        free(b);
        return ret;
    }
    *out = &b->v;
    return 0;
}
