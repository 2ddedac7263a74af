/* Private: the asynchronous engine behind virtio-blk. One io_uring per
 * device, its completions announced on an eventfd the device thread
 * watches. Absent (blk_uring_create fails) where the kernel or a sandbox
 * refuses io_uring: the device then does each request synchronously. */
#ifndef CVMM_BLK_URING_H
#define CVMM_BLK_URING_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

struct blk_uring;

enum blk_op { BLK_OP_READ, BLK_OP_WRITE, BLK_OP_FLUSH };

/* Room for `depth` requests in flight. */
int blk_uring_create(unsigned depth, struct blk_uring **out);
void blk_uring_destroy(struct blk_uring *u);
/* Readable when completions wait. */
int blk_uring_eventfd(const struct blk_uring *u);
/* Queues one operation; `iov` must live until its completion. Submitted
 * to the kernel by blk_uring_flush. -EBUSY when the ring is full. */
int blk_uring_queue(struct blk_uring *u, enum blk_op op, int fd, const struct iovec *iov, int count,
                    uint64_t offset, void *tag);
/* Hands the queued operations to the kernel. */
int blk_uring_flush(struct blk_uring *u);
/* Calls `done(ctx, tag, result)` for every completion there is (result:
 * bytes or -errno); with `wait`, first waits for at least one. Returns
 * how many. */
unsigned blk_uring_reap(struct blk_uring *u, bool wait, void (*done)(void *ctx, void *tag, int result), void *ctx);

#endif
