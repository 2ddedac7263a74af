/* Split virtqueues (virtio 1.2 §2.7), read from guest memory the guest
 * can rewrite at any moment. Every descriptor is copied once, then checked:
 * its buffer lies inside one RAM region, chains have no loops and at most
 * VMM_VIRTQ_MAX_CHAIN buffers, readable buffers precede writable ones,
 * indirect tables are not nested. A malformed queue is an error value,
 * never a crash or an unbounded loop. */
#ifndef VMM_VIRTQ_H
#define VMM_VIRTQ_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "vm/vmm_memory.h"

#define VMM_VIRTQ_MAX_SIZE 1024
#define VMM_VIRTQ_MAX_CHAIN 1024

struct vring_desc;
struct vring_avail;
struct vring_used;
struct vring_used_elem;

struct vmm_virtq {
    uint16_t size;
    bool event_idx;
    struct vring_desc *desc;
    struct vring_avail *avail;
    struct vring_used *used;
    uint16_t last_avail;     /* next avail entry to take */
    uint16_t used_idx;       /* next used entry to fill */
    uint16_t signalled_used; /* used_idx at the last interrupt */
    bool signalled_valid;
    /* The device's view, kept for the dirty log: what a push returns and
     * the used ring are written by the VMM, not the guest (vmm_dirty.h). */
    const struct vmm_gmem *mem;
    uint64_t used_gpa;
};

struct vmm_virtq_buf {
    uint8_t *hva;
    uint32_t len;
    bool writable;
};

struct vmm_virtq_chain {
    uint16_t head;
    unsigned count;
    uint64_t readable; /* bytes in the readable buffers */
    uint64_t writable; /* bytes in the writable buffers */
    struct vmm_virtq_buf bufs[VMM_VIRTQ_MAX_CHAIN];
};

/* Checks sizes, alignment and that all three rings lie in RAM. */
int vmm_virtq_init(struct vmm_virtq *q, const struct vmm_gmem *mem, uint16_t size, uint64_t desc,
                   uint64_t avail, uint64_t used, bool event_idx);
/* 1 and a checked chain, 0 if the driver offered nothing new, or a
 * negative errno for a malformed queue: -EINVAL (bad index or head),
 * -EFAULT (a buffer outside RAM), -ELOOP (loop or chain too long),
 * -EPROTO (readable after writable, nested or empty indirect table). */
int vmm_virtq_pop(struct vmm_virtq *q, const struct vmm_gmem *mem, struct vmm_virtq_chain *chain);
/* Returns a chain with `written` bytes put in its writable buffers. While
 * the VM's dirty log is on, its writable buffers (walked again from the
 * descriptor table) and the used ring are marked written. */
void vmm_virtq_push(struct vmm_virtq *q, uint16_t head, uint32_t written);
/* Returns `count` chains at once (id: head, len: bytes written): the
 * driver sees all of them or none, as a frame spread over several
 * mergeable receive buffers needs. */
void vmm_virtq_push_many(struct vmm_virtq *q, const struct vring_used_elem *elems, unsigned count);
/* After a batch of pushes: whether the driver wants an interrupt now. */
bool vmm_virtq_should_signal(struct vmm_virtq *q);
/* Before sleeping: asks for a kick on the next new buffer. Returns true
 * when buffers arrived meanwhile (process again instead of sleeping). */
bool vmm_virtq_rearm(struct vmm_virtq *q);

/* Copies up to `len` bytes of the chain's readable (or writable) data from
 * `offset` into `dst` (or from `src`); returns the bytes copied. */
uint64_t vmm_virtq_read(const struct vmm_virtq_chain *c, uint64_t offset, void *dst, uint64_t len);
uint64_t vmm_virtq_write(const struct vmm_virtq_chain *c, uint64_t offset, const void *src, uint64_t len);
/* An iovec of `len` bytes of readable (or writable) data from `offset`:
 * the count of entries, or -E2BIG if `max` entries do not hold it, -ERANGE
 * if the chain has fewer bytes. */
int vmm_virtq_iov(const struct vmm_virtq_chain *c, bool writable, uint64_t offset, uint64_t len,
                  struct iovec *iov, unsigned max);

#endif
