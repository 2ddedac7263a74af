/* Split virtqueues: see vmm_virtq.h. The guest may change the rings while
 * they are read, so each index and descriptor is loaded once into a local
 * and only the local is checked and used. */
#include <errno.h>
#include <linux/virtio_ring.h>
#include <string.h>

#include "virtio/vmm_virtq.h"
#include "vm/vmm_dirty.h"

static uint16_t load16(const void *p) { return __atomic_load_n((const uint16_t *)p, __ATOMIC_ACQUIRE); }

int vmm_virtq_init(struct vmm_virtq *q, const struct vmm_gmem *mem, uint16_t size, uint64_t desc,
                   uint64_t avail, uint64_t used, bool event_idx)
{
    if (size == 0 || size > VMM_VIRTQ_MAX_SIZE || (size & (size - 1)))
        return -EINVAL;
    if ((desc & 15) || (avail & 1) || (used & 3))
        return -EINVAL;
    /* With event_idx each ring has one more u16 at its end. */
    uint64_t desc_len = 16ull * size, avail_len = 6 + 2ull * size, used_len = 6 + 8ull * size;
    void *d = vmm_gmem_dma_whole(mem, desc, desc_len, false);
    void *a = vmm_gmem_dma_whole(mem, avail, avail_len, false);
    void *u = vmm_gmem_dma_whole(mem, used, used_len, true);
    if (!d || !a || !u)
        return -EFAULT;
    *q = (struct vmm_virtq){ .size = size, .event_idx = event_idx, .desc = d, .avail = a, .used = u,
                             .mem = mem, .used_gpa = used };
    return 0;
}

static uint16_t *avail_ring(const struct vmm_virtq *q) { return q->avail->ring; }
static uint16_t *used_event(const struct vmm_virtq *q) { return &q->avail->ring[q->size]; }
static uint16_t *avail_event(const struct vmm_virtq *q) { return (uint16_t *)&q->used->ring[q->size]; }

static void desc_copy(struct vring_desc *out, const struct vring_desc *in)
{
    __atomic_thread_fence(__ATOMIC_ACQUIRE);
    memcpy(out, (const void *)in, sizeof(*out));
}

/* Adds one checked buffer to the chain. */
static int chain_add(struct vmm_virtq_chain *c, const struct vmm_gmem *mem, const struct vring_desc *d)
{
    bool writable = d->flags & VRING_DESC_F_WRITE;
    if (c->count == VMM_VIRTQ_MAX_CHAIN)
        return -ELOOP;
    if (!writable && c->writable)
        return -EPROTO;
    if (d->len == 0)
        c->bufs[c->count++] = (struct vmm_virtq_buf){ NULL, 0, writable };
    /* Behind an IOMMU one descriptor may be several pieces of RAM. */
    for (uint64_t done = 0, got; done < d->len; done += got) {
        uint8_t *hva = vmm_gmem_dma(mem, d->addr + done, d->len - done, writable, &got);
        if (!hva)
            return -EFAULT;
        if (c->count == VMM_VIRTQ_MAX_CHAIN)
            return -ELOOP;
        c->bufs[c->count++] = (struct vmm_virtq_buf){ hva, (uint32_t)got, writable };
    }
    if (writable)
        c->writable += d->len;
    else
        c->readable += d->len;
    return 0;
}

/* Walks an indirect table: its own index space, no nesting. */
static int walk_indirect(struct vmm_virtq_chain *c, const struct vmm_gmem *mem, const struct vring_desc *outer)
{
    if (outer->len == 0 || outer->len % sizeof(struct vring_desc) || (outer->flags & VRING_DESC_F_NEXT))
        return -EPROTO;
    uint32_t n = outer->len / sizeof(struct vring_desc);
    if (n > VMM_VIRTQ_MAX_CHAIN)
        return -ELOOP;
    const struct vring_desc *table = vmm_gmem_dma_whole(mem, outer->addr, outer->len, false);
    if (!table)
        return -EFAULT;
    uint32_t i = 0;
    for (uint32_t steps = 0;; steps++) {
        if (steps == n)
            return -ELOOP;
        struct vring_desc d;
        desc_copy(&d, &table[i]);
        if (d.flags & VRING_DESC_F_INDIRECT)
            return -EPROTO;
        int ret = chain_add(c, mem, &d);
        if (ret < 0)
            return ret;
        if (!(d.flags & VRING_DESC_F_NEXT))
            return 0;
        if (d.next >= n)
            return -EINVAL;
        i = d.next;
    }
}

int vmm_virtq_pop(struct vmm_virtq *q, const struct vmm_gmem *mem, struct vmm_virtq_chain *c)
{
    uint16_t avail_idx = load16(&q->avail->idx);
    uint16_t waiting = (uint16_t)(avail_idx - q->last_avail);
    if (waiting == 0)
        return 0;
    if (waiting > q->size)
        return -EINVAL;
    uint16_t head = load16(&avail_ring(q)[q->last_avail % q->size]);
    if (head >= q->size)
        return -EINVAL;
    c->head = head;
    c->count = 0;
    c->readable = c->writable = 0;
    uint16_t i = head;
    /* A chain visits each of the `size` descriptors at most once. */
    for (unsigned steps = 0;; steps++) {
        if (steps == q->size)
            return -ELOOP;
        struct vring_desc d;
        desc_copy(&d, &q->desc[i]);
        int ret = (d.flags & VRING_DESC_F_INDIRECT) ? (steps == 0 ? walk_indirect(c, mem, &d) : -EPROTO)
                                                     : chain_add(c, mem, &d);
        if (ret < 0)
            return ret;
        if ((d.flags & VRING_DESC_F_INDIRECT) || !(d.flags & VRING_DESC_F_NEXT))
            break;
        if (d.next >= q->size)
            return -EINVAL;
        i = d.next;
    }
    q->last_avail++;
    return 1;
}

/* Marks the writable buffers of the chain at `head`, read again with the
 * bounds vmm_virtq_pop keeps; a chain the guest broke since is marked as
 * far as it still goes (the guest's own loss, never the VMM's). */
static void mark_chain(const struct vmm_virtq *q, uint16_t head)
{
    if (head >= q->size)
        return;
    uint16_t i = head;
    for (unsigned steps = 0; steps < q->size; steps++) {
        struct vring_desc d;
        desc_copy(&d, &q->desc[i]);
        if (d.flags & VRING_DESC_F_INDIRECT) {
            const struct vring_desc *table = vmm_gmem_dma_whole(q->mem, d.addr, d.len, false);
            uint32_t n = d.len / sizeof(struct vring_desc);
            for (uint32_t j = 0, k = 0; table && k < n && k < VMM_VIRTQ_MAX_CHAIN; k++) {
                struct vring_desc t;
                desc_copy(&t, &table[j]);
                if (t.flags & VRING_DESC_F_WRITE)
                    vmm_gmem_mark_dirty(q->mem, t.addr, t.len);
                if (!(t.flags & VRING_DESC_F_NEXT) || t.next >= n)
                    break;
                j = t.next;
            }
            return;
        }
        if (d.flags & VRING_DESC_F_WRITE)
            vmm_gmem_mark_dirty(q->mem, d.addr, d.len);
        if (!(d.flags & VRING_DESC_F_NEXT) || d.next >= q->size)
            return;
        i = d.next;
    }
}

static bool logging(const struct vmm_virtq *q) { return q->mem && vmm_gmem_logging(q->mem); }

static void mark_used_ring(const struct vmm_virtq *q)
{
    vmm_gmem_mark_dirty(q->mem, q->used_gpa, 6 + 8ull * q->size + 2);
}

void vmm_virtq_push_many(struct vmm_virtq *q, const struct vring_used_elem *elems, unsigned count)
{
    /* Each mark follows the write it covers (the buffers' bytes came
     * before this call): a log taken after it sends what was written. */
    if (logging(q)) {
        for (unsigned i = 0; i < count; i++)
            mark_chain(q, (uint16_t)elems[i].id);
    }
    for (unsigned i = 0; i < count; i++) {
        struct vring_used_elem *e = &q->used->ring[q->used_idx % q->size];
        e->id = elems[i].id;
        e->len = elems[i].len;
        q->used_idx++;
    }
    /* The elements are visible before the index that publishes them. */
    __atomic_store_n(&q->used->idx, q->used_idx, __ATOMIC_RELEASE);
    if (logging(q))
        mark_used_ring(q);
}

void vmm_virtq_push(struct vmm_virtq *q, uint16_t head, uint32_t written)
{
    const struct vring_used_elem e = { .id = head, .len = written };
    vmm_virtq_push_many(q, &e, 1);
}

bool vmm_virtq_should_signal(struct vmm_virtq *q)
{
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    if (!q->event_idx)
        return !(load16(&q->avail->flags) & VRING_AVAIL_F_NO_INTERRUPT);
    uint16_t old = q->signalled_used, now = q->used_idx;
    bool valid = q->signalled_valid;
    q->signalled_used = now;
    q->signalled_valid = true;
    return !valid || vring_need_event(load16(used_event(q)), now, old);
}

bool vmm_virtq_rearm(struct vmm_virtq *q)
{
    if (q->event_idx) {
        __atomic_store_n(avail_event(q), q->last_avail, __ATOMIC_RELEASE);
        if (logging(q))
            mark_used_ring(q);
    }
    /* The store above must be visible before the driver's index is read
     * again, or a buffer added in between would never be kicked. */
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    return load16(&q->avail->idx) != q->last_avail;
}

static uint64_t copy(const struct vmm_virtq_chain *c, bool writable, uint64_t offset, uint8_t *mem,
                     uint64_t len, bool to_chain)
{
    uint64_t done = 0;
    for (unsigned i = 0; i < c->count && done < len; i++) {
        const struct vmm_virtq_buf *b = &c->bufs[i];
        if (b->writable != writable)
            continue;
        if (offset >= b->len) {
            offset -= b->len;
            continue;
        }
        uint64_t n = b->len - offset;
        if (n > len - done)
            n = len - done;
        if (to_chain)
            memcpy(b->hva + offset, mem + done, n);
        else
            memcpy(mem + done, b->hva + offset, n);
        done += n;
        offset = 0;
    }
    return done;
}

uint64_t vmm_virtq_read(const struct vmm_virtq_chain *c, uint64_t offset, void *dst, uint64_t len)
{
    return copy(c, false, offset, dst, len, false);
}

uint64_t vmm_virtq_write(const struct vmm_virtq_chain *c, uint64_t offset, const void *src, uint64_t len)
{
    return copy(c, true, offset, (uint8_t *)src, len, true);
}

int vmm_virtq_iov(const struct vmm_virtq_chain *c, bool writable, uint64_t offset, uint64_t len,
                  struct iovec *iov, unsigned max)
{
    unsigned n = 0;
    for (unsigned i = 0; i < c->count && len; i++) {
        const struct vmm_virtq_buf *b = &c->bufs[i];
        if (b->writable != writable)
            continue;
        if (offset >= b->len) {
            offset -= b->len;
            continue;
        }
        if (n == max)
            return -E2BIG;
        uint64_t take = b->len - offset;
        if (take > len)
            take = len;
        iov[n++] = (struct iovec){ b->hva + offset, take };
        len -= take;
        offset = 0;
    }
    return len ? -ERANGE : (int)n;
}
