/* virtio-blk (virtio 1.2 §5.2) on a raw image: read, write, flush,
 * get-id, discard and write-zeroes, one or more queues, served on the
 * device's thread with vectored I/O straight into guest memory. Reads,
 * writes and flushes go through io_uring so that a queue's requests
 * overlap; where io_uring is unavailable, each is done in turn. */
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/virtio_blk.h>
#include <linux/virtio_ids.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sys/epoll.h>

#include "common/sparse.h"
#include "virtio/blk_uring.h"
#include "virtio/virtio_dev.h"

#define SECTOR 512u
#define SEG_MAX 128u
#define DISCARD_SEGS 32u
#define MAX_DISCARD_SECTORS (UINT32_MAX / SECTOR)

/* A request in flight: what its completion needs. */
#define REQ_IOV (SEG_MAX + 2)
struct blk_req {
    struct blk_req *next_free;
    uint16_t head, queue;
    bool write;
    uint32_t written;  /* bytes put in the chain when it succeeds, status included */
    uint64_t expected; /* bytes the operation must move */
    uint64_t offset;
    uint8_t *status;   /* the chain's status byte in guest RAM */
    int iovcnt;
    struct iovec iov[REQ_IOV];
};

struct virtio_blk {
    struct vmm_virtio v; /* first: the core's object is the device's */
    struct blk_uring *uring; /* NULL: synchronous */
    /* The pool: `fresh` requests were never used (their pages never
     * touched, so an idle VM does not pay for its queue depth); used
     * ones come back on the free list. */
    struct blk_req *reqs, *free_reqs;
    unsigned fresh, depth;
    unsigned inflight;
    bool *signal_queue; /* per queue: completions pushed since the last signal */
    /* vm.counters: written by the device thread alone, read by the VMM thread. */
    _Atomic uint64_t read_bytes, read_ops, write_bytes, write_ops;
    struct vmm_ratelimit io_log;
    int fd;
    uint64_t size_bytes;
    bool readonly;
    char serial[VIRTIO_BLK_ID_BYTES];
    struct virtio_blk_config config;
    struct vmm_virtq_chain chain;
    struct iovec iov[VMM_VIRTQ_MAX_CHAIN];
};

static struct virtio_blk *blk_of(struct vmm_virtio *v) { return (struct virtio_blk *)v; }

static void count(struct virtio_blk *b, bool write, uint64_t bytes)
{
    atomic_fetch_add_explicit(write ? &b->write_bytes : &b->read_bytes, bytes, memory_order_relaxed);
    atomic_fetch_add_explicit(write ? &b->write_ops : &b->read_ops, 1, memory_order_relaxed);
}

void vmm_virtio_blk_counters(struct vmm_virtio *device, uint64_t out[4])
{
    struct virtio_blk *b = blk_of(device);
    out[0] = atomic_load(&b->read_bytes);
    out[1] = atomic_load(&b->read_ops);
    out[2] = atomic_load(&b->write_bytes);
    out[3] = atomic_load(&b->write_ops);
}

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

/* The status byte: the last writable byte of the chain. */
static uint8_t *status_byte(const struct vmm_virtq_chain *c)
{
    for (unsigned i = c->count; i-- > 0;)
        if (c->bufs[i].writable && c->bufs[i].len)
            return c->bufs[i].hva + c->bufs[i].len - 1;
    return NULL;
}

/* Hands a read, write or flush to io_uring; false if it must be done here. */
static bool start_async(struct virtio_blk *b, unsigned qi, const struct vmm_virtq_chain *c, enum blk_op op,
                        uint64_t offset, uint64_t len)
{
    struct blk_req *r = b->free_reqs ? b->free_reqs : (b->fresh < b->depth ? &b->reqs[b->fresh] : NULL);
    if (!b->uring || !r)
        return false;
    r->iovcnt = 0;
    if (op != BLK_OP_FLUSH) {
        bool write = op == BLK_OP_WRITE;
        r->iovcnt = vmm_virtq_iov(c, !write, write ? sizeof(struct virtio_blk_outhdr) : 0, len, r->iov, REQ_IOV);
        if (r->iovcnt < 0)
            return false; /* more segments than a pooled request holds */
    }
    if (blk_uring_queue(b->uring, op, b->fd, r->iov, r->iovcnt, offset, r) < 0)
        return false;
    if (r == b->free_reqs)
        b->free_reqs = r->next_free;
    else
        b->fresh++;
    b->inflight++;
    r->head = c->head;
    r->queue = (uint16_t)qi;
    r->write = op == BLK_OP_WRITE;
    r->expected = len;
    r->offset = offset;
    r->written = 1 + (op == BLK_OP_READ ? (uint32_t)len : 0);
    r->status = status_byte(c);
    return true;
}

/* Reads and writes: -EINPROGRESS when handed to io_uring, else a status. */
static int read_write(struct virtio_blk *b, unsigned qi, const struct vmm_virtq_chain *c, uint64_t sector, bool write,
                      uint32_t *written)
{
    uint64_t len = write ? c->readable - sizeof(struct virtio_blk_outhdr) : c->writable - 1;
    if (write && b->readonly)
        return VIRTIO_BLK_S_IOERR;
    if (!in_bounds(b, sector, len))
        return VIRTIO_BLK_S_IOERR;
    if (start_async(b, qi, c, write ? BLK_OP_WRITE : BLK_OP_READ, sector * SECTOR, len))
        return -EINPROGRESS;
    /* A guest write is data the device reads, and the other way round. */
    int n = vmm_virtq_iov(c, !write, write ? sizeof(struct virtio_blk_outhdr) : 0, len, b->iov, VMM_VIRTQ_MAX_CHAIN);
    int ret = n < 0 ? n : transfer(b->fd, b->iov, n, sector * SECTOR, write);
    if (ret < 0) {
        if (vmm_ratelimit_allow(&b->io_log))
            vmm_log_warn("%s: a %s at byte %llu failed: errno %d", b->v.thread_name, write ? "write" : "read",
                         (unsigned long long)(sector * SECTOR), -ret);
        return VIRTIO_BLK_S_IOERR;
    }
    if (!write)
        *written += (uint32_t)len;
    count(b, write, len);
    return VIRTIO_BLK_S_OK;
}

static int punch_hole(int fd, off_t at, off_t len)
{
    return fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, at, len) < 0 ? -errno : 0;
}

/* Zeroes that stay allocated (write-zeroes without "may unmap"). File
 * systems without FALLOC_FL_ZERO_RANGE (tmpfs, where images of short-lived
 * VMs often live) get the same from a hole punched and allocated again,
 * as QEMU does: no zero byte is written, so a few-byte request never
 * holds the device's thread for a write of the whole range. */
static int zero_allocated(int fd, off_t at, off_t len)
{
    if (fallocate(fd, FALLOC_FL_ZERO_RANGE, at, len) == 0)
        return 0;
    if (errno != EOPNOTSUPP)
        return -errno;
    int ret = punch_hole(fd, at, len);
    if (ret == 0 && fallocate(fd, 0, at, len) < 0)
        ret = -errno;
    return ret;
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
        if (bytes == 0)
            continue;
        off_t offset = (off_t)(seg.sector * SECTOR), len = (off_t)bytes;
        int ret = zeroes && !(seg.flags & VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP) ? zero_allocated(b->fd, offset, len)
                                                                              : punch_hole(b->fd, offset, len);
        /* A discard the file system cannot do is still a discard done;
         * zeroes must be zeroes. */
        if (ret < 0 && zeroes)
            return VIRTIO_BLK_S_IOERR;
    }
    return VIRTIO_BLK_S_OK;
}

/* One request: true and the bytes written into the chain (data + status)
 * when it is answered now, false when it is in flight. */
static bool handle(struct vmm_virtio *v, unsigned qi, const struct vmm_virtq_chain *c, uint32_t *out)
{
    struct virtio_blk *b = blk_of(v);
    struct virtio_blk_outhdr hdr;
    *out = 0;
    if (c->writable == 0)
        return true; /* nowhere to put a status: nothing can be answered */
    uint32_t written = 1;
    int status;
    if (vmm_virtq_read(c, 0, &hdr, sizeof(hdr)) != sizeof(hdr)) {
        status = VIRTIO_BLK_S_IOERR;
    } else {
        switch (hdr.type) {
        case VIRTIO_BLK_T_IN:
            status = read_write(b, qi, c, hdr.sector, false, &written);
            break;
        case VIRTIO_BLK_T_OUT:
            status = read_write(b, qi, c, hdr.sector, true, &written);
            break;
        case VIRTIO_BLK_T_FLUSH:
            if (start_async(b, qi, c, BLK_OP_FLUSH, 0, 0))
                status = -EINPROGRESS;
            else
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
    if (status == -EINPROGRESS)
        return false;
    uint8_t byte = (uint8_t)status;
    vmm_virtq_write(c, c->writable - 1, &byte, 1);
    *out = written;
    return true;
}

static void queue_kick(struct vmm_virtio *v, unsigned qi)
{
    virtio_serve_queue(v, qi, &blk_of(v)->chain, handle);
}

/* What a batch handed to io_uring goes to the kernel in one submission. */
static void batch_done(struct vmm_virtio *v)
{
    struct virtio_blk *b = blk_of(v);
    if (b->uring)
        blk_uring_flush(b->uring);
}

/* One completion: the status byte, then the chain back to the guest. */
static void complete(void *ctx, void *tag, int result)
{
    struct virtio_blk *b = ctx;
    struct blk_req *r = tag;
    uint8_t status = VIRTIO_BLK_S_OK;
    if (result < 0) {
        status = VIRTIO_BLK_S_IOERR;
        /* The host's I/O failed: the guest sees an I/O error, the user why. */
        if (vmm_ratelimit_allow(&b->io_log))
            vmm_log_warn("%s: a %s at byte %llu failed on the host: errno %d", b->v.thread_name,
                         r->write ? "write" : r->expected ? "read" : "flush", (unsigned long long)r->offset, -result);
    } else if ((uint64_t)result < r->expected) {
        /* A short transfer: the rest, here. */
        struct iovec *iov = r->iov;
        int count = r->iovcnt;
        uint64_t skip = (uint64_t)result;
        while (count > 0 && skip >= iov->iov_len) {
            skip -= iov->iov_len;
            iov++;
            count--;
        }
        if (count > 0) {
            iov->iov_base = (uint8_t *)iov->iov_base + skip;
            iov->iov_len -= skip;
        }
        if (transfer(b->fd, iov, count, r->offset + (uint64_t)result, r->write) < 0)
            status = VIRTIO_BLK_S_IOERR;
    }
    b->inflight--;
    if (status == VIRTIO_BLK_S_OK && r->expected)
        count(b, r->write, r->expected);
    /* After a reset or a broken queue the chain is no longer the guest's to get back. */
    if (b->v.active && r->status) {
        *r->status = status;
        vmm_virtq_push(&b->v.queues[r->queue].vq, r->head, status == VIRTIO_BLK_S_OK ? r->written : 1);
        b->signal_queue[r->queue] = true;
    }
    r->next_free = b->free_reqs;
    b->free_reqs = r;
}

/* One interrupt per queue that got completions since the last. */
static void signal_completed(struct virtio_blk *b)
{
    for (unsigned i = 0; i < b->v.nqueues; i++) {
        if (b->signal_queue[i]) {
            b->signal_queue[i] = false;
            virtio_queue_signal(&b->v, i);
        }
    }
}

static void fd_ready(struct vmm_virtio *v, int fd, uint32_t events)
{
    struct virtio_blk *b = blk_of(v);
    (void)fd;
    (void)events;
    blk_uring_reap(b->uring, false, complete, b);
    signal_completed(b);
}

/* Waits out every request in flight: the guest may reuse its buffers as
 * soon as the reset completes. */
static void drain(struct virtio_blk *b)
{
    while (b->inflight)
        if (!blk_uring_reap(b->uring, true, complete, b))
            break;
}

static void reset(struct vmm_virtio *v)
{
    v->active = false;
    drain(blk_of(v));
}

/* A pause completes what the host has in flight: the guest gets its
 * answers, and the used rings are the whole state of the queues. */
static void settle(struct vmm_virtio *v)
{
    struct virtio_blk *b = blk_of(v);
    if (!b->uring)
        return;
    drain(b);
    signal_completed(b);
}

static void destroy(struct vmm_virtio *v)
{
    struct virtio_blk *b = blk_of(v);
    if (b->uring) {
        v->active = false;
        drain(b);
        blk_uring_destroy(b->uring);
    }
    vmm_sparse_free(b->reqs);
    free(b->signal_queue);
    vmm_sparse_free(b);
}

static const struct virtio_device_ops blk_ops = {
    .device_id = VIRTIO_ID_BLOCK,
    .pci_class = 0x018000, /* mass storage, other */
    .config_access = config_access,
    .queue_kick = queue_kick,
    .fd_ready = fd_ready,
    .batch_done = batch_done,
    .settle = settle,
    .reset = reset,
    .destroy = destroy,
};

/* The request pool and io_uring; without io_uring the device works
 * synchronously, so only allocation failures are errors. */
static int setup_async(struct virtio_blk *b, unsigned depth)
{
    b->signal_queue = calloc(b->v.nqueues, sizeof(bool));
    if (!b->signal_queue)
        return -ENOMEM;
    if (blk_uring_create(depth, &b->uring) < 0) {
        b->uring = NULL;
        return 0;
    }
    b->reqs = vmm_sparse_alloc(depth * sizeof(*b->reqs));
    if (!b->reqs)
        return -ENOMEM;
    b->depth = depth;
    return virtio_watch(&b->v, blk_uring_eventfd(b->uring), EPOLLIN, true);
}

int vmm_virtio_blk_create(struct vmm_vm *vm, const struct vmm_virtio_blk_config *cfg, struct vmm_virtio **out)
{
    if (cfg->fd < 0 || cfg->num_queues == 0 || cfg->queue_size < 2)
        return -EINVAL;
    struct virtio_blk *b = vmm_sparse_alloc(sizeof(*b));
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
    if (ret == 0)
        ret = setup_async(b, (unsigned)cfg->num_queues * cfg->queue_size);
    if (ret < 0) {
        virtio_destroy(&b->v);
        destroy(&b->v);
        return ret;
    }
    *out = &b->v;
    return 0;
}

bool vmm_virtio_blk_is_async(const struct vmm_virtio *v)
{
    return ((const struct virtio_blk *)v)->uring != NULL;
}
