/* io_uring for virtio-blk: see blk_uring.h. */
#include <errno.h>
#include <liburing.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "virtio/blk_uring.h"

struct blk_uring {
    struct io_uring ring;
    int eventfd;
};

int blk_uring_create(unsigned depth, struct blk_uring **out)
{
    struct blk_uring *u = calloc(1, sizeof(*u));
    if (!u)
        return -ENOMEM;
    unsigned entries = 1;
    while (entries < depth && entries < 4096)
        entries <<= 1;
    int ret = io_uring_queue_init(entries, &u->ring, 0);
    if (ret < 0) {
        free(u);
        return ret;
    }
    u->eventfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (u->eventfd < 0 || (ret = io_uring_register_eventfd(&u->ring, u->eventfd)) < 0) {
        ret = u->eventfd < 0 ? -errno : ret;
        blk_uring_destroy(u);
        return ret;
    }
    *out = u;
    return 0;
}

void blk_uring_destroy(struct blk_uring *u)
{
    if (!u)
        return;
    io_uring_queue_exit(&u->ring);
    if (u->eventfd >= 0)
        close(u->eventfd);
    free(u);
}

int blk_uring_eventfd(const struct blk_uring *u) { return u->eventfd; }

int blk_uring_queue(struct blk_uring *u, enum blk_op op, int fd, const struct iovec *iov, int count,
                    uint64_t offset, void *tag)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(&u->ring);
    if (!sqe)
        return -EBUSY;
    switch (op) {
    case BLK_OP_READ:
        io_uring_prep_readv(sqe, fd, iov, (unsigned)count, offset);
        break;
    case BLK_OP_WRITE:
        io_uring_prep_writev(sqe, fd, iov, (unsigned)count, offset);
        break;
    case BLK_OP_FLUSH:
        io_uring_prep_fsync(sqe, fd, IORING_FSYNC_DATASYNC);
        break;
    }
    io_uring_sqe_set_data(sqe, tag);
    return 0;
}

int blk_uring_flush(struct blk_uring *u)
{
    int ret;
    do {
        ret = io_uring_submit(&u->ring);
    } while (ret == -EINTR);
    return ret < 0 ? ret : 0;
}

unsigned blk_uring_reap(struct blk_uring *u, bool wait, void (*done)(void *ctx, void *tag, int result), void *ctx)
{
    uint64_t count;
    ssize_t ignored = read(u->eventfd, &count, sizeof(count));
    (void)ignored;
    unsigned n = 0;
    struct io_uring_cqe *cqe;
    if (wait) {
        int ret;
        do {
            ret = io_uring_wait_cqe(&u->ring, &cqe);
        } while (ret == -EINTR);
        if (ret < 0)
            return 0;
    }
    while (io_uring_peek_cqe(&u->ring, &cqe) == 0) {
        void *tag = io_uring_cqe_get_data(cqe);
        int result = cqe->res;
        io_uring_cqe_seen(&u->ring, cqe);
        done(ctx, tag, result);
        n++;
    }
    return n;
}
