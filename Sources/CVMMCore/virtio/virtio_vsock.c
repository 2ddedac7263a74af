/* virtio-vsock (virtio 1.2 §5.10), stream sockets, whose host end is
 * Cloud Hypervisor's hybrid vsock (vsock_host.c). Queue 0 takes packets to
 * the guest, queue 1 brings the guest's; the event queue is left alone
 * (its only event is a transport reset after migration).
 *
 * Everything owed to the guest hangs off its stream (control bits, data
 * waiting in the host socket), so what the device holds is bounded by
 * its streams (at most VSOCK_MAX_CONNS), each with at most VSOCK_CONN_BUF
 * of the guest's data, plus a short ring of resets for unknown streams.
 * Host data is read only into a guest buffer, and only up to the guest's
 * credit: a guest that stops reading stops the host socket, not the VMM. */
#include <endian.h>
#include <errno.h>
#include <linux/virtio_ids.h>
#include <linux/virtio_vsock.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "common/sparse.h"
#include "virtio/virtio_dev.h"
#include "virtio/vsock_conn.h"

enum { RX_QUEUE = 0, TX_QUEUE = 1, EVENT_QUEUE = 2 };
#define HDR ((uint32_t)sizeof(struct virtio_vsock_hdr))
#define ORPHAN_RSTS 64
/* How long a host client waits for the guest to answer its CONNECT
 * (Cloud Hypervisor's and Firecracker's 2 s). */
#define REQUEST_TIMEOUT_MS 2000
/* How long guest data a reset left behind may wait for its client to read it. */
#define DRAIN_TIMEOUT_MS 30000
#define ACCEPTS_PER_WAKE 16
#define MAX_IOV 64
/* Host-side ports of host-initiated streams, as Firecracker picks them. */
#define LOCAL_PORT_BASE (1u << 30)

struct virtio_vsock {
    struct vmm_virtio v;
    uint64_t guest_cid;
    int listen_fd;
    int timer_fd;
    bool timer_armed;
    char *socket_path;
    struct vsock_conn *conns[VSOCK_MAX_CONNS];
    unsigned nconns;
    unsigned rx_cursor; /* round robin over the streams with something to send */
    uint32_t next_local_port;
    /* Resets owed for packets of streams the device does not know. */
    struct { uint32_t src_port, dst_port; } orphans[ORPHAN_RSTS];
    unsigned orphan_start, orphan_len;
    struct vmm_ratelimit log;
    struct iovec iov[MAX_IOV];
    struct vmm_virtq_chain chain;
};

static struct virtio_vsock *vsock_of(struct vmm_virtio *v) { return (struct virtio_vsock *)v; }

static void arm_timer(struct virtio_vsock *s, bool on);

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void config_access(struct vmm_virtio *v, uint32_t offset, uint8_t *data, uint32_t size, bool is_write)
{
    struct virtio_vsock_config config = { .guest_cid = htole64(vsock_of(v)->guest_cid) };
    if (is_write)
        return; /* read-only */
    memset(data, 0, size);
    if (offset < sizeof(config))
        memcpy(data, (uint8_t *)&config + offset, size < sizeof(config) - offset ? size : sizeof(config) - offset);
}

/* Streams */

static struct vsock_conn *find(struct virtio_vsock *s, uint32_t local_port, uint32_t peer_port)
{
    for (unsigned i = 0; i < s->nconns; i++) {
        struct vsock_conn *c = s->conns[i];
        /* A client that has not named its port yet has no address. */
        if (c->state != CONN_AWAIT_LINE && c->local_port == local_port && c->peer_port == peer_port)
            return c;
    }
    return NULL;
}

static struct vsock_conn *find_fd(struct virtio_vsock *s, int fd)
{
    for (unsigned i = 0; i < s->nconns; i++)
        if (s->conns[i]->fd == fd)
            return s->conns[i];
    return NULL;
}

static bool has_room(const struct virtio_vsock *s) { return s->nconns < VSOCK_MAX_CONNS; }

static struct vsock_conn *conn_add(struct virtio_vsock *s, int fd, enum vsock_conn_state state)
{
    if (!has_room(s))
        return NULL;
    struct vsock_conn *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->fd = fd;
    c->state = state;
    c->watched = state == CONN_AWAIT_LINE ? EPOLLIN : 0;
    if (virtio_watch(&s->v, fd, c->watched, true) < 0) {
        free(c);
        return NULL;
    }
    s->conns[s->nconns++] = c;
    return c;
}

static void conn_remove(struct virtio_vsock *s, struct vsock_conn *c)
{
    for (unsigned i = 0; i < s->nconns; i++) {
        if (s->conns[i] == c) {
            s->conns[i] = s->conns[--s->nconns];
            break;
        }
    }
    vsock_conn_free(c); /* closing the fd takes it off the epoll set */
}

/* Ends a stream: the host socket closes now, the guest is sent a reset
 * (unless it never heard of the stream). */
static void conn_kill(struct virtio_vsock *s, struct vsock_conn *c)
{
    if (c->fd >= 0) {
        close(c->fd);
        c->fd = -1;
    }
    bool known = (c->state == CONN_ESTABLISHED && !c->peer_reset) || (c->state == CONN_LOCAL_INIT && c->request_sent);
    if (!known) {
        conn_remove(s, c);
        return;
    }
    c->send = SEND_RST;
    c->readable = false;
}

static void rewatch(struct virtio_vsock *s, struct vsock_conn *c)
{
    uint32_t events = vsock_host_events(c);
    if (c->fd >= 0 && !c->host_hup && events != c->watched && virtio_watch(&s->v, c->fd, events, false) == 0)
        c->watched = events;
}

static uint32_t peer_credit(const struct vsock_conn *c)
{
    uint32_t in_flight = c->rx_cnt - c->peer_fwd_cnt;
    return in_flight < c->peer_buf_alloc ? c->peer_buf_alloc - in_flight : 0;
}

static bool wants_rx(const struct vsock_conn *c)
{
    return c->send || (c->readable && peer_credit(c) > 0);
}

/* After the guest's data moved or its SHUTDOWN came: a write side to
 * close, or a stream over both ways. */
static void settle(struct virtio_vsock *s, struct vsock_conn *c)
{
    if (c->fd < 0 || c->tx_len)
        return;
    if (c->peer_no_send && !c->write_shut) {
        shutdown(c->fd, SHUT_WR);
        c->write_shut = true;
    }
    if (c->peer_no_send && (c->peer_no_recv || c->host_eof))
        conn_kill(s, c);
}

/* Packets to the guest */

static void put_header(struct virtio_vsock *s, uint32_t src_port, uint32_t dst_port, uint16_t op, uint32_t len,
                       uint32_t flags, uint32_t fwd_cnt)
{
    struct virtio_vsock_hdr h = {
        .src_cid = htole64(VSOCK_HOST_CID), .dst_cid = htole64(s->guest_cid),
        .src_port = htole32(src_port), .dst_port = htole32(dst_port), .len = htole32(len),
        .type = htole16(VIRTIO_VSOCK_TYPE_STREAM), .op = htole16(op), .flags = htole32(flags),
        .buf_alloc = htole32(VSOCK_CONN_BUF), .fwd_cnt = htole32(fwd_cnt),
    };
    vmm_virtq_write(&s->chain, 0, &h, HDR);
}

/* Host data into the chain after the header: its length, 0 at the end of
 * the host's data, or -1 when nothing could be read now. */
static int64_t read_data(struct virtio_vsock *s, struct vsock_conn *c)
{
    uint64_t room = s->chain.writable - HDR;
    uint32_t credit = peer_credit(c);
    uint32_t want = room < credit ? (uint32_t)room : credit;
    if (want == 0)
        return -1;
    int cnt = vmm_virtq_iov(&s->chain, true, HDR, want, s->iov, MAX_IOV);
    if (cnt < 0) {
        want = s->chain.bufs[0].len - HDR; /* a chain this scattered: its first buffer alone */
        cnt = vmm_virtq_iov(&s->chain, true, HDR, want, s->iov, MAX_IOV);
        if (cnt < 0)
            return -1;
    }
    ssize_t n;
    do {
        n = readv(c->fd, s->iov, cnt);
    } while (n < 0 && errno == EINTR);
    if (n < 0 && errno == EAGAIN && c->host_hup)
        n = 0; /* nothing would wake the stream again: its end */
    if (n < 0 && errno == EAGAIN) {
        c->readable = false;
        return -1;
    }
    if (n < 0) {
        conn_kill(s, c);
        return -1;
    }
    if ((uint32_t)n < want && !c->host_hup)
        c->readable = false; /* drained: wait for EPOLLIN again */
    return n;
}

/* One packet for stream `c` in the popped chain: its length, or 0 if it
 * had nothing to send after all. */
static uint32_t produce(struct virtio_vsock *s, struct vsock_conn *c)
{
    uint16_t op = 0;
    uint32_t len = 0, flags = 0;
    if (c->send & SEND_RST) {
        put_header(s, c->local_port, c->peer_port, VIRTIO_VSOCK_OP_RST, 0, 0, c->fwd_cnt);
        conn_remove(s, c);
        return HDR;
    }
    if (c->send & SEND_REQUEST) {
        op = VIRTIO_VSOCK_OP_REQUEST;
        c->send &= ~SEND_REQUEST;
        c->request_sent = true;
    } else if (c->send & SEND_RESPONSE) {
        op = VIRTIO_VSOCK_OP_RESPONSE;
        c->send &= ~SEND_RESPONSE;
    } else if (c->readable && c->fd >= 0) {
        int64_t n = read_data(s, c);
        if (c->fd < 0)
            return produce(s, c); /* the read failed: the reset is what goes */
        if (n > 0) {
            op = VIRTIO_VSOCK_OP_RW;
            len = (uint32_t)n;
            c->rx_cnt += len;
        } else if (n == 0) {
            /* The host's end of data: the guest hears it as a SHUTDOWN,
             * both ways if the client is gone altogether. */
            c->readable = false;
            c->host_eof = true;
            op = VIRTIO_VSOCK_OP_SHUTDOWN;
            flags = VIRTIO_VSOCK_SHUTDOWN_SEND | (c->host_hup ? VIRTIO_VSOCK_SHUTDOWN_RCV : 0);
        }
        rewatch(s, c);
    }
    if (!op && (c->send & SEND_SHUTDOWN)) {
        op = VIRTIO_VSOCK_OP_SHUTDOWN;
        flags = c->shutdown_flags;
        c->send &= ~SEND_SHUTDOWN;
    } else if (!op && (c->send & SEND_CREDIT_REQUEST)) {
        op = VIRTIO_VSOCK_OP_CREDIT_REQUEST;
        c->send &= ~SEND_CREDIT_REQUEST;
    } else if (!op && (c->send & SEND_CREDIT)) {
        op = VIRTIO_VSOCK_OP_CREDIT_UPDATE;
    }
    if (!op)
        return 0;
    c->send &= ~SEND_CREDIT; /* every packet carries fwd_cnt */
    c->fwd_cnt_told = c->fwd_cnt;
    put_header(s, c->local_port, c->peer_port, op, len, flags, c->fwd_cnt);
    /* Both ends done sending: nothing more can flow. */
    if (op == VIRTIO_VSOCK_OP_SHUTDOWN && (flags & VIRTIO_VSOCK_SHUTDOWN_RCV))
        conn_remove(s, c);
    else if (c->host_eof)
        settle(s, c);
    return HDR + len;
}

/* A credit request once a stream has data but the guest's buffer is full. */
static void ask_credit(struct vsock_conn *c)
{
    if (c->readable && !c->host_hup && peer_credit(c) == 0 && !c->credit_requested) {
        c->send |= SEND_CREDIT_REQUEST;
        c->credit_requested = true;
    }
}

static uint32_t produce_next(struct virtio_vsock *s)
{
    if (s->orphan_len) {
        unsigned i = s->orphan_start;
        put_header(s, s->orphans[i].dst_port, s->orphans[i].src_port, VIRTIO_VSOCK_OP_RST, 0, 0, 0);
        s->orphan_start = (i + 1) % ORPHAN_RSTS;
        s->orphan_len--;
        return HDR;
    }
    for (unsigned tried = 0; tried < s->nconns; tried++) {
        unsigned i = (s->rx_cursor + tried) % s->nconns;
        struct vsock_conn *c = s->conns[i];
        ask_credit(c);
        if (!wants_rx(c))
            continue;
        s->rx_cursor = i + 1;
        uint32_t n = produce(s, c);
        if (n)
            return n;
    }
    return 0;
}

static bool has_rx_work(struct virtio_vsock *s)
{
    if (s->orphan_len)
        return true;
    for (unsigned i = 0; i < s->nconns; i++) {
        ask_credit(s->conns[i]);
        if (wants_rx(s->conns[i]))
            return true;
    }
    return false;
}

/* Fills the guest's receive buffers with whatever is owed, one packet each. */
static void serve_rx(struct virtio_vsock *s)
{
    struct vmm_virtq *q = &s->v.queues[RX_QUEUE].vq;
    unsigned done = 0;
    while (s->v.active && has_rx_work(s)) {
        int r = vmm_virtq_pop(q, &s->v.mem, &s->chain);
        if (r < 0) {
            virtio_fail(&s->v, RX_QUEUE, r);
            return;
        }
        if (r == 0) {
            if (vmm_virtq_rearm(q))
                continue;
            break; /* no buffers: the rest waits for the guest's kick */
        }
        if (s->chain.writable < HDR) {
            virtio_fail(&s->v, RX_QUEUE, -EPROTO);
            return;
        }
        vmm_virtq_push(q, s->chain.head, produce_next(s));
        done++;
    }
    if (done)
        virtio_queue_signal(&s->v, RX_QUEUE);
}

/* Packets from the guest */

static void orphan_rst(struct virtio_vsock *s, uint32_t src_port, uint32_t dst_port)
{
    if (s->orphan_len == ORPHAN_RSTS)
        return; /* the guest times such a stream out itself */
    unsigned i = (s->orphan_start + s->orphan_len++) % ORPHAN_RSTS;
    s->orphans[i].src_port = src_port;
    s->orphans[i].dst_port = dst_port;
}

static void guest_connects(struct virtio_vsock *s, const struct virtio_vsock_hdr *h)
{
    uint32_t src_port = le32toh(h->src_port), dst_port = le32toh(h->dst_port);
    /* At the limit the host service is not even connected to: it would
     * see a connection opened and closed at once for each such REQUEST. */
    int fd = has_room(s) ? vsock_host_connect(s->socket_path, dst_port) : -1;
    struct vsock_conn *c = fd < 0 ? NULL : conn_add(s, fd, CONN_ESTABLISHED);
    if (!c) {
        if (fd >= 0)
            close(fd);
        orphan_rst(s, src_port, dst_port); /* nobody listens there: refused */
        return;
    }
    c->local_port = dst_port;
    c->peer_port = src_port;
    c->peer_buf_alloc = le32toh(h->buf_alloc);
    c->peer_fwd_cnt = le32toh(h->fwd_cnt);
    c->send = SEND_RESPONSE;
    rewatch(s, c);
}

static void guest_data(struct virtio_vsock *s, struct vsock_conn *c, const struct vmm_virtq_chain *chain, uint32_t len)
{
    if (c->state != CONN_ESTABLISHED || c->peer_no_send || c->fd < 0) {
        conn_kill(s, c);
        return;
    }
    if (len == 0)
        return;
    int cnt = vmm_virtq_iov(chain, false, HDR, len, s->iov, MAX_IOV);
    int r;
    if (cnt >= 0) {
        r = vsock_host_forward(c, s->iov, cnt, len);
    } else {
        /* Too scattered for one call: a piece at a time, in order. */
        r = 0;
        for (uint32_t off = 0; off < len && r == 0;) {
            uint8_t piece[4096];
            uint32_t n = len - off < sizeof(piece) ? len - off : (uint32_t)sizeof(piece);
            vmm_virtq_read(chain, HDR + off, piece, n);
            struct iovec one = { piece, n };
            r = vsock_host_forward(c, &one, 1, n);
            off += n;
        }
    }
    if (r == -ENOBUFS && vmm_ratelimit_allow(&s->log))
        vmm_log_warn("%s: the guest sent past its credit on port %u; stream reset", s->v.thread_name, c->peer_port);
    if (r < 0) {
        conn_kill(s, c);
        return;
    }
    if (c->fwd_cnt - c->fwd_cnt_told >= VSOCK_CREDIT_THRESHOLD)
        c->send |= SEND_CREDIT;
    rewatch(s, c);
}

static void guest_shutdown(struct virtio_vsock *s, struct vsock_conn *c, uint32_t flags)
{
    if (c->state != CONN_ESTABLISHED) {
        conn_kill(s, c);
        return;
    }
    c->peer_no_send |= (flags & VIRTIO_VSOCK_SHUTDOWN_SEND) != 0;
    c->peer_no_recv |= (flags & VIRTIO_VSOCK_SHUTDOWN_RCV) != 0;
    if (c->peer_no_recv)
        c->readable = false;
    rewatch(s, c);
    settle(s, c);
}

static void guest_packet(struct virtio_vsock *s, const struct virtio_vsock_hdr *h, const struct vmm_virtq_chain *chain)
{
    uint16_t op = le16toh(h->op);
    uint32_t src_port = le32toh(h->src_port), dst_port = le32toh(h->dst_port), len = le32toh(h->len);
    bool ours = le64toh(h->src_cid) == s->guest_cid && le64toh(h->dst_cid) == VSOCK_HOST_CID &&
                le16toh(h->type) == VIRTIO_VSOCK_TYPE_STREAM && len <= chain->readable - HDR;
    struct vsock_conn *c = ours ? find(s, dst_port, src_port) : NULL;
    if (!c) {
        if (ours && op == VIRTIO_VSOCK_OP_REQUEST)
            guest_connects(s, h);
        else if (op != VIRTIO_VSOCK_OP_RST) /* never a reset for a reset */
            orphan_rst(s, src_port, dst_port);
        return;
    }
    if (c->peer_reset) {
        /* The guest is done with it: a new stream on the same ports replaces it. */
        if (op == VIRTIO_VSOCK_OP_REQUEST) {
            conn_remove(s, c);
            guest_connects(s, h);
        }
        return;
    }
    c->peer_buf_alloc = le32toh(h->buf_alloc);
    c->peer_fwd_cnt = le32toh(h->fwd_cnt);
    c->credit_requested = false;
    switch (op) {
    case VIRTIO_VSOCK_OP_RW:
        guest_data(s, c, chain, len);
        break;
    case VIRTIO_VSOCK_OP_RESPONSE:
        if (c->state != CONN_LOCAL_INIT || !c->request_sent || vsock_host_send_ok(c) < 0) {
            conn_kill(s, c);
            break;
        }
        c->state = CONN_ESTABLISHED;
        rewatch(s, c);
        break;
    case VIRTIO_VSOCK_OP_RST:
        /* What the guest sent before its reset is the client's, as the
         * kernel's own vsock keeps it readable after one: Linux resets a
         * stream it closed when the other end has not ended it 8 s on, and
         * a slow client may not have read all of it by then. */
        if (c->state == CONN_ESTABLISHED && c->fd >= 0 && c->tx_len) {
            c->peer_reset = c->peer_no_send = c->peer_no_recv = true;
            c->readable = false;
            c->send = 0;
            c->deadline_ms = now_ms() + DRAIN_TIMEOUT_MS;
            arm_timer(s, true);
            rewatch(s, c);
            break;
        }
        conn_remove(s, c); /* a host client waiting for CONNECT sees it closed: refused */
        break;
    case VIRTIO_VSOCK_OP_SHUTDOWN:
        guest_shutdown(s, c, le32toh(h->flags));
        break;
    case VIRTIO_VSOCK_OP_CREDIT_REQUEST:
        c->send |= SEND_CREDIT;
        break;
    case VIRTIO_VSOCK_OP_CREDIT_UPDATE:
        break; /* its credit is taken above */
    default:
        conn_kill(s, c); /* a second REQUEST, an unknown op */
        break;
    }
}

static bool on_tx(struct vmm_virtio *v, unsigned q, const struct vmm_virtq_chain *chain, uint32_t *written)
{
    struct virtio_vsock *s = vsock_of(v);
    struct virtio_vsock_hdr h;
    (void)q;
    *written = 0;
    if (vmm_virtq_read(chain, 0, &h, HDR) == HDR)
        guest_packet(s, &h, chain);
    return true;
}

/* Host events */

static void arm_timer(struct virtio_vsock *s, bool on)
{
    if (s->timer_armed == on)
        return;
    struct itimerspec period = { 0 };
    if (on)
        period.it_interval.tv_nsec = period.it_value.tv_nsec = 500 * 1000000L;
    if (timerfd_settime(s->timer_fd, 0, &period, NULL) == 0)
        s->timer_armed = on;
}

static void expire_requests(struct virtio_vsock *s)
{
    uint64_t ticks;
    ssize_t ignored = read(s->timer_fd, &ticks, sizeof(ticks));
    (void)ignored;
    uint64_t now = now_ms();
    bool waiting = false;
    for (unsigned i = s->nconns; i-- > 0;) {
        struct vsock_conn *c = s->conns[i];
        if ((c->state != CONN_LOCAL_INIT && !c->peer_reset) || c->fd < 0)
            continue;
        if (now >= c->deadline_ms)
            conn_kill(s, c); /* the client's socket closes: no answer, or not read in time */
        else
            waiting = true;
    }
    arm_timer(s, waiting);
}

static void accept_clients(struct virtio_vsock *s)
{
    for (int i = 0; i < ACCEPTS_PER_WAKE; i++) {
        int fd = accept4(s->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            return;
        if (!conn_add(s, fd, CONN_AWAIT_LINE)) {
            close(fd); /* at the limit: the client sees its socket closed */
            if (vmm_ratelimit_allow(&s->log))
                vmm_log_warn("%s: %u streams open; a host connection was refused", s->v.thread_name, s->nconns);
        }
    }
}

static uint32_t allocate_local_port(struct virtio_vsock *s, uint32_t peer_port)
{
    do {
        s->next_local_port = LOCAL_PORT_BASE | ((s->next_local_port + 1) & (LOCAL_PORT_BASE - 1));
    } while (find(s, s->next_local_port, peer_port));
    return s->next_local_port;
}

static void host_line(struct virtio_vsock *s, struct vsock_conn *c)
{
    uint32_t port;
    int r = vsock_host_read_line(c, &port);
    if (r == 0)
        return;
    if (r < 0) {
        conn_remove(s, c);
        return;
    }
    c->peer_port = port;
    c->local_port = allocate_local_port(s, port);
    c->state = CONN_LOCAL_INIT;
    c->send = SEND_REQUEST;
    c->deadline_ms = now_ms() + REQUEST_TIMEOUT_MS;
    rewatch(s, c);
    arm_timer(s, true);
}

static void host_event(struct virtio_vsock *s, struct vsock_conn *c, uint32_t events)
{
    if (c->state == CONN_AWAIT_LINE) {
        host_line(s, c);
        return;
    }
    bool open = c->state == CONN_ESTABLISHED && !c->host_eof && !c->peer_no_recv;
    if ((events & EPOLLERR) || ((events & EPOLLHUP) && !open)) {
        conn_kill(s, c); /* gone before the stream was up, or after its data ended */
        return;
    }
    if (events & EPOLLHUP) {
        /* The client is gone: what it sent is all there, read without
         * epoll, which would report the hang-up again and again. */
        virtio_unwatch(&s->v, c->fd);
        c->host_hup = true;
        c->readable = true;
        c->watched = 0;
        return;
    }
    if ((events & EPOLLOUT) && vsock_host_drain(c) < 0) {
        conn_kill(s, c);
        return;
    }
    if ((events & EPOLLIN) && open)
        c->readable = true;
    /* A stream the guest reset is not spoken of to it again. */
    if (!c->peer_reset && c->fwd_cnt - c->fwd_cnt_told >= VSOCK_CREDIT_THRESHOLD)
        c->send |= SEND_CREDIT;
    rewatch(s, c);
    settle(s, c);
}

static void fd_ready(struct vmm_virtio *v, int fd, uint32_t events)
{
    struct virtio_vsock *s = vsock_of(v);
    if (fd == s->listen_fd) {
        accept_clients(s);
    } else if (fd == s->timer_fd) {
        expire_requests(s);
    } else {
        struct vsock_conn *c = find_fd(s, fd);
        if (c)
            host_event(s, c, events);
    }
    serve_rx(s);
}

static void queue_kick(struct vmm_virtio *v, unsigned q)
{
    struct virtio_vsock *s = vsock_of(v);
    if (q == TX_QUEUE)
        virtio_serve_queue(v, q, &s->chain, on_tx);
    if (q != EVENT_QUEUE)
        serve_rx(s);
}

/* The driver went away (reset, reboot): every stream ends; host clients
 * see their sockets close. The listening socket stays. */
static void reset(struct vmm_virtio *v)
{
    struct virtio_vsock *s = vsock_of(v);
    while (s->nconns)
        conn_remove(s, s->conns[s->nconns - 1]);
    s->orphan_len = 0;
    arm_timer(s, false);
}

static void destroy(struct vmm_virtio *v)
{
    struct virtio_vsock *s = vsock_of(v);
    reset(v);
    if (s->timer_fd >= 0)
        close(s->timer_fd);
    free(s->socket_path);
    vmm_sparse_free(s);
}

static const struct virtio_device_ops vsock_ops = {
    .device_id = VIRTIO_ID_VSOCK,
    .pci_class = 0x078000, /* communication, other */
    /* Its connections are host sockets: not a snapshot's to carry. */
    .unsaveable = true,
    .config_access = config_access,
    .queue_kick = queue_kick,
    .fd_ready = fd_ready,
    .reset = reset,
    .destroy = destroy,
};

int vmm_virtio_vsock_create(struct vmm_vm *vm, const struct vmm_virtio_vsock_config *config, struct vmm_virtio **out)
{
    if (config->guest_cid < 3 || config->guest_cid > UINT32_MAX - 1 || config->listen_fd < 0 || !config->socket_path)
        return -EINVAL;
    struct virtio_vsock *s = vmm_sparse_alloc(sizeof(*s));
    if (!s)
        return -ENOMEM;
    s->guest_cid = config->guest_cid;
    s->listen_fd = config->listen_fd;
    s->socket_path = strdup(config->socket_path);
    s->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    int ret = !s->socket_path ? -ENOMEM : s->timer_fd < 0 ? -errno : 0;
    if (ret < 0) {
        if (s->timer_fd >= 0)
            close(s->timer_fd);
        free(s->socket_path);
        vmm_sparse_free(s);
        return ret;
    }
    ret = virtio_init(&s->v, vm, &vsock_ops, config->thread_name, 0, 3, 256);
    if (ret == 0)
        ret = virtio_watch(&s->v, s->listen_fd, EPOLLIN, true);
    if (ret == 0)
        ret = virtio_watch(&s->v, s->timer_fd, EPOLLIN, true);
    if (ret < 0) {
        virtio_destroy(&s->v);
        destroy(&s->v);
        return ret;
    }
    *out = &s->v;
    return 0;
}
