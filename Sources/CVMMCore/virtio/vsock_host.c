/* The host side of Cloud Hypervisor's hybrid vsock: UNIX stream sockets.
 * A host client connects to the device's socket and names the guest port
 * with "CONNECT <port>\n"; a guest connecting to host port P reaches the
 * socket "<path>_P". Guest data the client is slow to take waits in a
 * bounded ring per stream, never more than the credit the guest was given. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "virtio/vsock_conn.h"

/* The shortest complete request: reading this much never takes a byte
 * past the newline, which would be the client's first data. */
#define MIN_REQUEST (sizeof("connect 0\n") - 1)

static int parse_line(const char *line, unsigned len, uint32_t *port)
{
    const size_t prefix = sizeof("connect ") - 1;
    if (len < prefix + 2 || strncasecmp(line, "connect ", prefix) != 0)
        return -1;
    uint64_t value = 0;
    unsigned i = (unsigned)prefix, digits = 0;
    while (i < len && line[i] == ' ')
        i++;
    for (; i < len && line[i] >= '0' && line[i] <= '9' && digits < 10; i++, digits++)
        value = value * 10 + (uint64_t)(line[i] - '0');
    while (i < len && (line[i] == ' ' || line[i] == '\r'))
        i++;
    if (!digits || value > UINT32_MAX || i != len - 1 || line[i] != '\n')
        return -1;
    *port = (uint32_t)value;
    return 1;
}

int vsock_host_read_line(struct vsock_conn *c, uint32_t *port)
{
    for (;;) {
        size_t want = c->line_len < MIN_REQUEST ? MIN_REQUEST - c->line_len : 1;
        ssize_t n = read(c->fd, c->line + c->line_len, want);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            return 0;
        if (n <= 0)
            return -1;
        c->line_len += (unsigned)n;
        if (c->line[c->line_len - 1] == '\n')
            return parse_line(c->line, c->line_len, port);
        if (c->line_len == sizeof(c->line))
            return -1;
    }
}

int vsock_host_connect(const char *path, uint32_t port)
{
    struct sockaddr_un addr = { .sun_family = AF_UNIX };
    int len = snprintf(addr.sun_path, sizeof(addr.sun_path), "%s_%u", path, port);
    if (len < 0 || (size_t)len >= sizeof(addr.sun_path)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    /* A UNIX stream connects at once or not at all (EAGAIN: backlog full). */
    if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
        int saved = errno;
        close(fd);
        errno = saved;
        return -1;
    }
    return fd;
}

static ssize_t send_iov(int fd, const struct iovec *iov, int iovcnt)
{
    struct msghdr msg = { .msg_iov = (struct iovec *)iov, .msg_iovlen = (size_t)iovcnt };
    ssize_t n;
    do {
        /* MSG_NOSIGNAL: a client gone is an error here, not a SIGPIPE. */
        n = sendmsg(fd, &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
    } while (n < 0 && errno == EINTR);
    if (n < 0 && errno == EAGAIN)
        return 0;
    return n < 0 ? -errno : n;
}

int vsock_host_send_ok(struct vsock_conn *c)
{
    char text[24];
    int len = snprintf(text, sizeof(text), "OK %u\n", c->local_port);
    struct iovec iov = { text, (size_t)len };
    ssize_t n = send_iov(c->fd, &iov, 1);
    /* A fresh socket's buffer takes a line whole; anything else is a client gone. */
    return n == len ? 0 : n < 0 ? (int)n : -EPIPE;
}

/* Copies `len` bytes from `iov`, starting `skip` bytes in, to the ring's end. */
static void ring_append(struct vsock_conn *c, const struct iovec *iov, int iovcnt, size_t skip, uint32_t len)
{
    for (int i = 0; i < iovcnt && len; i++) {
        if (skip >= iov[i].iov_len) {
            skip -= iov[i].iov_len;
            continue;
        }
        const uint8_t *src = (const uint8_t *)iov[i].iov_base + skip;
        size_t avail = iov[i].iov_len - skip;
        skip = 0;
        while (avail && len) {
            uint32_t end = (c->tx_start + c->tx_len) % VSOCK_CONN_BUF;
            uint32_t chunk = VSOCK_CONN_BUF - end;
            if (chunk > avail)
                chunk = (uint32_t)avail;
            if (chunk > len)
                chunk = len;
            memcpy(c->txbuf + end, src, chunk);
            c->tx_len += chunk;
            src += chunk;
            avail -= chunk;
            len -= chunk;
        }
    }
}

int vsock_host_forward(struct vsock_conn *c, const struct iovec *iov, int iovcnt, uint32_t len)
{
    if (len > VSOCK_CONN_BUF - c->tx_len)
        return -ENOBUFS;
    uint32_t sent = 0;
    if (c->tx_len == 0) {
        ssize_t n = send_iov(c->fd, iov, iovcnt);
        if (n < 0)
            return (int)n;
        sent = (uint32_t)n;
        c->fwd_cnt += sent;
    }
    if (sent == len)
        return 0;
    if (!c->txbuf && !(c->txbuf = malloc(VSOCK_CONN_BUF)))
        return -ENOMEM;
    ring_append(c, iov, iovcnt, sent, len - sent);
    return 0;
}

int vsock_host_drain(struct vsock_conn *c)
{
    while (c->tx_len) {
        uint32_t first = VSOCK_CONN_BUF - c->tx_start;
        if (first > c->tx_len)
            first = c->tx_len;
        struct iovec iov[2] = { { c->txbuf + c->tx_start, first }, { c->txbuf, c->tx_len - first } };
        ssize_t n = send_iov(c->fd, iov, c->tx_len > first ? 2 : 1);
        if (n < 0)
            return (int)n;
        if (n == 0)
            return 0;
        c->tx_start = (uint32_t)((c->tx_start + (uint32_t)n) % VSOCK_CONN_BUF);
        c->tx_len -= (uint32_t)n;
        c->fwd_cnt += (uint32_t)n;
    }
    /* Retired as soon as it is empty: an idle stream holds no buffer. */
    free(c->txbuf);
    c->txbuf = NULL;
    c->tx_start = 0;
    return 0;
}

uint32_t vsock_host_events(const struct vsock_conn *c)
{
    if (c->fd < 0)
        return 0;
    uint32_t events = c->tx_len ? EPOLLOUT : 0;
    if (c->state == CONN_AWAIT_LINE)
        return EPOLLIN;
    /* While data is taken but not yet delivered, level-triggered EPOLLIN would only spin. */
    if (c->state == CONN_ESTABLISHED && !c->readable && !c->host_eof && !c->peer_no_recv)
        events |= EPOLLIN;
    return events;
}

void vsock_conn_free(struct vsock_conn *c)
{
    if (c->fd >= 0)
        close(c->fd);
    free(c->txbuf);
    free(c);
}
