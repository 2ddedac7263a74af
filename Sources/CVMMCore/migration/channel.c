/* Live migration's framed messages with bounded waits: see vmm_migration.h. */
#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "migration/vmm_migration.h"

int64_t vmm_mig_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* 0 once the socket is ready for `events` (or failed: the call says how). */
static int wait_ready(const struct vmm_mig_channel *ch, short events)
{
    for (;;) {
        int timeout = ch->idle_ms > 0 ? ch->idle_ms : -1;
        if (ch->deadline_ms) {
            int64_t left = ch->deadline_ms - vmm_mig_now_ms();
            if (left <= 0)
                return -ETIMEDOUT;
            if (timeout < 0 || left < timeout)
                timeout = (int)left;
        }
        /* poll skips the negative descriptors of unused abort slots. */
        struct pollfd p[3] = { { ch->fd, events, 0 }, { ch->abort[0], POLLIN, 0 }, { ch->abort[1], POLLIN, 0 } };
        int n = poll(p, 3, timeout);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        if (n == 0)
            return -ETIMEDOUT;
        if (p[1].revents || p[2].revents)
            return -ECANCELED;
        return 0;
    }
}

/* sendmsg/recvmsg of `iov` to its end, advancing it. */
static int transfer(const struct vmm_mig_channel *ch, struct iovec *iov, int count, bool sending)
{
    while (count > 0) {
        if (iov->iov_len == 0) {
            iov++;
            count--;
            continue;
        }
        int ret = wait_ready(ch, sending ? POLLOUT : POLLIN);
        if (ret < 0)
            return ret;
        struct msghdr msg = { .msg_iov = iov, .msg_iovlen = (size_t)(count > 1024 ? 1024 : count) };
        ssize_t n = sending ? sendmsg(ch->fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT)
                            : recvmsg(ch->fd, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
        if (n < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (n < 0)
            return errno == ECONNRESET ? -EPIPE : -errno;
        if (n == 0)
            return -EPIPE; /* the peer closed its end */
        for (size_t left = (size_t)n; left > 0;) {
            size_t step = left < iov->iov_len ? left : iov->iov_len;
            iov->iov_base = (uint8_t *)iov->iov_base + step;
            iov->iov_len -= step;
            left -= step;
            if (iov->iov_len == 0) {
                iov++;
                count--;
            }
        }
    }
    return 0;
}

int vmm_mig_write(const struct vmm_mig_channel *ch, const void *buf, size_t len)
{
    struct iovec iov = { (void *)buf, len };
    return transfer(ch, &iov, 1, true);
}

int vmm_mig_read(const struct vmm_mig_channel *ch, void *buf, size_t len)
{
    struct iovec iov = { buf, len };
    return transfer(ch, &iov, 1, false);
}

int vmm_mig_writev(const struct vmm_mig_channel *ch, struct iovec *iov, int count)
{
    return transfer(ch, iov, count, true);
}

int vmm_mig_read_header(const struct vmm_mig_channel *ch, struct vmm_mig_header *out)
{
    int ret = vmm_mig_read(ch, out, sizeof(*out));
    if (ret < 0)
        return ret;
    return out->magic == VMM_MIG_MAGIC && out->kind >= VMM_MIG_START && out->kind <= VMM_MIG_REPLY ? 0 : -EPROTO;
}

int vmm_mig_write_message(const struct vmm_mig_channel *ch, uint32_t kind, const void *payload, uint64_t length)
{
    struct vmm_mig_header h = { VMM_MIG_MAGIC, kind, length };
    struct iovec iov[2] = { { &h, sizeof(h) }, { (void *)payload, (size_t)length } };
    return transfer(ch, iov, 2, true);
}

int vmm_mig_send_fds(const struct vmm_mig_channel *ch, const int *fds, unsigned count)
{
    if (count == 0 || count > 16)
        return -EINVAL;
    union {
        char buf[CMSG_SPACE(16 * sizeof(int))];
        struct cmsghdr align;
    } control;
    memset(&control, 0, sizeof(control));
    uint8_t byte = (uint8_t)count;
    struct iovec iov = { &byte, 1 };
    struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buf,
                          .msg_controllen = CMSG_SPACE(count * sizeof(int)) };
    struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(count * sizeof(int));
    memcpy(CMSG_DATA(c), fds, count * sizeof(int));
    for (;;) {
        int ret = wait_ready(ch, POLLOUT);
        if (ret < 0)
            return ret;
        ssize_t n = sendmsg(ch->fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n == 1)
            return 0;
        if (n < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        return n < 0 ? -errno : -EPIPE;
    }
}

int vmm_mig_receive_fds(const struct vmm_mig_channel *ch, int *fds, unsigned max)
{
    union {
        char buf[CMSG_SPACE(16 * sizeof(int))];
        struct cmsghdr align;
    } control;
    uint8_t byte;
    struct iovec iov = { &byte, 1 };
    for (;;) {
        int ret = wait_ready(ch, POLLIN);
        if (ret < 0)
            return ret;
        struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buf,
                              .msg_controllen = sizeof(control.buf) };
        ssize_t n = recvmsg(ch->fd, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
        if (n < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (n <= 0)
            return n < 0 ? -errno : -EPIPE;
        unsigned got = 0;
        for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
            if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
                continue;
            unsigned n_fds = (unsigned)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
            int *in = (int *)CMSG_DATA(c);
            for (unsigned i = 0; i < n_fds; i++) {
                if (got < max)
                    fds[got++] = in[i];
                else
                    close(in[i]); /* more than asked for: not kept */
            }
        }
        if ((msg.msg_flags & MSG_CTRUNC) || got != byte) {
            for (unsigned i = 0; i < got; i++)
                close(fds[i]);
            return -EPROTO;
        }
        return (int)got;
    }
}
