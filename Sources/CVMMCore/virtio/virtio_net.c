/* virtio-net (virtio 1.2 §5.1) on a tap: one tap queue per queue pair.
 * Frames move between the guest's buffers and the tap with one readv or
 * writev each, the 12-byte virtio-net header included, so checksum and
 * segmentation offloads pass through untouched (the tap checks the
 * guest's headers; one it refuses is a dropped frame).
 *
 * Receive never takes a frame from the tap without guest buffers to put
 * it in: with too few the tap is unwatched until the guest kicks, and
 * frames wait in the tap's own bounded queue, not in the VMM. With
 * mergeable receive buffers (VIRTIO_NET_F_MRG_RXBUF, which Linux uses to
 * post page-sized buffers instead of 64 KiB ones) a frame is read straight
 * into as many buffers as it needs: enough for the largest frame the tap
 * may hand over are taken from the ring first, and the ones a frame
 * leaves unused wait for the next.
 *
 * Transmitted frames are back in the used ring at once, but their
 * interrupt is held, as a NIC's interrupt moderation holds it: until
 * TX_HOLD_NS after the first, or TX_HOLD_FRAMES or TX_HOLD_BYTES have
 * gone. Linux frees a sent skb when the interrupt comes (or at its next
 * transmit), and while a socket's earlier skb is not freed its small
 * writes coalesce into one (TCP autocorking) instead of a frame, an exit
 * and an ACK each. Bulk traffic reaches the byte bound with every large
 * frame, so it is interrupted as before. */
#include <errno.h>
#include <stdatomic.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <linux/virtio_ids.h>
#include <linux/virtio_net.h>
#include <linux/virtio_ring.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/timerfd.h>
#include <sys/uio.h>
#include <unistd.h>

#include "common/sparse.h"
#include "virtio/virtio_dev.h"
#include "net/vmm_tap.h"

#define RX_BUDGET 64 /* frames per wakeup before transmit gets its turn */
#define RX_STAGE_CHAINS 256 /* receive buffers taken ahead for one frame */
/* Their guest memory pieces. Linux's receive chains have one (mergeable)
 * or at most 19 (big packets); a chain of more than this is refused. */
#define RX_STAGE_IOVS 256
/* Transmit interrupt moderation's bounds (i40e's default holds 122 µs). */
#define TX_HOLD_NS 100000
#define TX_HOLD_FRAMES 64
#define TX_HOLD_BYTES 65536

/* Receive buffers taken from the ring and not yet filled, in ring order;
 * `iov` holds their writable parts, `chain[i].len` each one's size. */
struct rx_stage {
    unsigned chains, iovs;
    uint64_t bytes;
    struct vring_used_elem chain[RX_STAGE_CHAINS];
    uint16_t chain_iovs[RX_STAGE_CHAINS];
    struct iovec iov[RX_STAGE_IOVS];
};

struct net_pair {
    int tap_fd;
    bool watched;  /* tap's EPOLLIN is on the thread's epoll set */
    bool held;     /* `rx` holds a popped buffer the stage had no room for */
    struct vmm_virtq_chain *rx;
    struct rx_stage *stage;
    /* Transmitted frames whose interrupt is held, and their bytes. */
    unsigned tx_held;
    uint64_t tx_held_bytes;
};

struct virtio_net {
    struct vmm_virtio v;
    unsigned pairs, active_pairs;
    uint64_t offloads;  /* the guest offloads the tap has now (VIRTIO_NET_F_GUEST_*) */
    uint32_t rx_need;   /* the largest frame the tap may hand over, header included */
    uint8_t config[12]; /* mac, status, max_virtqueue_pairs, mtu */
    int tx_timer_fd;    /* fires TX_HOLD_NS after the first held interrupt */
    bool tx_timer_armed;
    struct vmm_ratelimit tap_log;
    /* vm.counters: written by the device thread alone, read by the VMM thread. */
    _Atomic uint64_t rx_bytes, rx_frames, tx_bytes, tx_frames;
    struct vmm_virtq_chain chain; /* transmit and control */
    struct iovec iov[VMM_VIRTQ_MAX_CHAIN];
    struct net_pair pair[];
};

static struct virtio_net *net_of(struct vmm_virtio *v) { return (struct virtio_net *)v; }

void vmm_virtio_net_counters(struct vmm_virtio *device, uint64_t out[4])
{
    struct virtio_net *n = net_of(device);
    out[0] = atomic_load(&n->rx_bytes);
    out[1] = atomic_load(&n->rx_frames);
    out[2] = atomic_load(&n->tx_bytes);
    out[3] = atomic_load(&n->tx_frames);
}
static unsigned ctrl_queue(const struct virtio_net *n) { return 2 * n->pairs; }

static void config_access(struct vmm_virtio *v, uint32_t offset, uint8_t *data, uint32_t size, bool is_write)
{
    struct virtio_net *n = net_of(v);
    if (is_write)
        return; /* the MAC is read-only to a version-1 driver */
    for (uint32_t i = 0; i < size; i++)
        data[i] = offset + i < sizeof(n->config) ? n->config[offset + i] : 0;
}

static void watch_tap(struct virtio_net *n, unsigned p, bool on)
{
    struct net_pair *pair = &n->pair[p];
    if (pair->watched != on && virtio_watch(&n->v, pair->tap_fd, on ? EPOLLIN : 0, false) == 0)
        pair->watched = on;
}

/* Takes receive buffers from the ring into the stage until it holds
 * `need` bytes (one buffer without mergeable buffers). False when the
 * ring ran dry first. */
static bool stage_buffers(struct virtio_net *n, unsigned p, uint64_t need, unsigned *returned)
{
    struct net_pair *pair = &n->pair[p];
    struct rx_stage *st = pair->stage;
    struct vmm_virtq *q = &n->v.queues[2 * p].vq;
    while (st->chains == 0 || (st->bytes < need && st->chains < RX_STAGE_CHAINS)) {
        if (!pair->held) {
            int r = vmm_virtq_pop(q, &n->v.mem, pair->rx);
            if (r < 0) {
                virtio_fail(&n->v, 2 * p, r);
                return false;
            }
            if (r == 0) {
                if (vmm_virtq_rearm(q))
                    continue;
                return false;
            }
            pair->held = true;
        }
        int count = vmm_virtq_iov(pair->rx, true, 0, pair->rx->writable, st->iov + st->iovs,
                                  RX_STAGE_IOVS - st->iovs);
        if (count == -E2BIG && st->chains)
            return true; /* held for the next frame; this one has the stage's room */
        pair->held = false;
        if (count <= 0 || pair->rx->writable < VMM_VIRTIO_NET_HDR_SIZE) {
            /* Not a receive buffer (or one in more pieces than the stage holds):
             * returned empty, as the driver asked for nothing. */
            vmm_virtq_push(q, pair->rx->head, 0);
            (*returned)++;
            continue;
        }
        uint32_t len = pair->rx->writable > UINT32_MAX ? UINT32_MAX : (uint32_t)pair->rx->writable;
        st->chain[st->chains] = (struct vring_used_elem){ .id = pair->rx->head, .len = len };
        st->chain_iovs[st->chains++] = (uint16_t)count;
        st->iovs += (unsigned)count;
        st->bytes += len;
    }
    return true;
}

/* `len` bytes of `src` into the iovec at byte `offset`. */
static void iov_put(const struct iovec *iov, unsigned count, size_t offset, const void *src, size_t len)
{
    const uint8_t *from = src;
    for (unsigned i = 0; i < count && len; i++) {
        if (offset >= iov[i].iov_len) {
            offset -= iov[i].iov_len;
            continue;
        }
        size_t n = iov[i].iov_len - offset < len ? iov[i].iov_len - offset : len;
        memcpy((uint8_t *)iov[i].iov_base + offset, from, n);
        from += n;
        len -= n;
        offset = 0;
    }
}

/* A frame of `got` bytes read into the stage: the buffers it filled go to
 * the guest together, the first one's header saying how many; the rest
 * move up for the next frame. */
static void deliver(struct virtio_net *n, unsigned p, uint64_t got)
{
    struct rx_stage *st = n->pair[p].stage;
    unsigned used = 0, iovs = 0;
    uint64_t left = got;
    do {
        uint32_t len = left < st->chain[used].len ? (uint32_t)left : st->chain[used].len;
        st->bytes -= st->chain[used].len;
        st->chain[used].len = len;
        left -= len;
        iovs += st->chain_iovs[used++];
    } while (left && used < st->chains);
    uint16_t buffers = (uint16_t)used;
    iov_put(st->iov, st->chain_iovs[0], 10, &buffers, sizeof(buffers)); /* num_buffers */
    vmm_virtq_push_many(&n->v.queues[2 * p].vq, st->chain, used);
    st->chains -= used;
    st->iovs -= iovs;
    memmove(st->chain, st->chain + used, st->chains * sizeof(st->chain[0]));
    memmove(st->chain_iovs, st->chain_iovs + used, st->chains * sizeof(st->chain_iovs[0]));
    memmove(st->iov, st->iov + iovs, st->iovs * sizeof(st->iov[0]));
}

/* The tap's frames into the guest's receive buffers of pair `p`, until
 * either runs out or the budget does. */
static void receive(struct virtio_net *n, unsigned p)
{
    struct net_pair *pair = &n->pair[p];
    bool mergeable = n->v.driver_features >> VIRTIO_NET_F_MRG_RXBUF & 1;
    uint64_t need = mergeable ? n->rx_need : 0;
    unsigned done = 0;
    for (unsigned budget = RX_BUDGET; budget && n->v.active; budget--) {
        if (!stage_buffers(n, p, need, &done)) {
            if (n->v.active)
                watch_tap(n, p, false); /* until the guest gives buffers */
            break;
        }
        ssize_t got = readv(pair->tap_fd, pair->stage->iov, (int)pair->stage->iovs);
        if (got < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN && vmm_ratelimit_allow(&n->tap_log))
                vmm_log_warn("%s: reading the tap: %s", n->v.thread_name, strerror(errno));
            break; /* the buffers stay staged for the next frame */
        }
        deliver(n, p, (uint64_t)got);
        atomic_fetch_add_explicit(&n->rx_bytes, (uint64_t)got, memory_order_relaxed);
        atomic_fetch_add_explicit(&n->rx_frames, 1, memory_order_relaxed);
        done++;
    }
    if (done)
        virtio_queue_signal(&n->v, 2 * p);
}

static bool transmit(struct vmm_virtio *v, unsigned q, const struct vmm_virtq_chain *chain, uint32_t *written)
{
    struct virtio_net *n = net_of(v);
    *written = 0;
    struct net_pair *pair = &n->pair[q / 2];
    pair->tx_held++;
    pair->tx_held_bytes += chain->readable;
    int count = vmm_virtq_iov(chain, false, 0, chain->readable, n->iov, VMM_VIRTQ_MAX_CHAIN);
    if (count <= 0 || chain->readable < VMM_VIRTIO_NET_HDR_SIZE)
        return true; /* no header: nothing to send */
    ssize_t sent;
    do {
        sent = writev(pair->tap_fd, n->iov, count);
    } while (sent < 0 && errno == EINTR);
    if (sent > 0) {
        atomic_fetch_add_explicit(&n->tx_bytes, (uint64_t)sent, memory_order_relaxed);
        atomic_fetch_add_explicit(&n->tx_frames, 1, memory_order_relaxed);
    }
    /* A frame the tap refuses (bad header, too long, queue detached) is dropped. */
    if (sent < 0 && errno != EINVAL && errno != EAGAIN && errno != EBADFD && errno != EMSGSIZE &&
        vmm_ratelimit_allow(&n->tap_log))
        vmm_log_warn("%s: writing to the tap: %s", v->thread_name, strerror(errno));
    return true;
}

static void arm_tx_timer(struct virtio_net *n, bool on)
{
    if (n->tx_timer_armed == on)
        return;
    struct itimerspec when = { .it_value.tv_nsec = on ? TX_HOLD_NS : 0 };
    if (timerfd_settime(n->tx_timer_fd, 0, &when, NULL) == 0)
        n->tx_timer_armed = on;
}

/* The interrupt held for pair `p`'s transmitted frames (if the driver
 * still wants one). */
static void release_tx(struct virtio_net *n, unsigned p)
{
    struct net_pair *pair = &n->pair[p];
    if (!pair->tx_held)
        return;
    pair->tx_held = 0;
    pair->tx_held_bytes = 0;
    virtio_queue_signal(&n->v, 2 * p + 1);
}

static void release_all_tx(struct virtio_net *n)
{
    for (unsigned p = 0; p < n->pairs; p++)
        release_tx(n, p);
    arm_tx_timer(n, false);
}

static void completed(struct vmm_virtio *v, unsigned q)
{
    struct virtio_net *n = net_of(v);
    if (q == ctrl_queue(n)) {
        virtio_queue_signal(v, q);
        return;
    }
    const struct net_pair *pair = &n->pair[q / 2];
    if (pair->tx_held >= TX_HOLD_FRAMES || pair->tx_held_bytes >= TX_HOLD_BYTES) {
        release_tx(n, q / 2);
    } else {
        /* Not re-armed by later frames: the first one's wait is the bound. */
        arm_tx_timer(n, true);
        /* A timer that cannot be set must not strand the interrupt. */
        if (!n->tx_timer_armed)
            release_tx(n, q / 2);
    }
}

/* Which tap queues take traffic: the first `pairs`, as the driver chose. */
static int set_active_pairs(struct virtio_net *n, unsigned pairs)
{
    if (n->pairs == 1) {
        n->active_pairs = 1;
        return 0;
    }
    for (unsigned p = 0; p < n->pairs; p++) {
        struct ifreq ifr = { .ifr_flags = p < pairs ? IFF_ATTACH_QUEUE : IFF_DETACH_QUEUE };
        /* Attaching an attached queue (or detaching a detached one) is EINVAL: nothing to do. */
        if (ioctl(n->pair[p].tap_fd, TUNSETQUEUE, &ifr) < 0 && errno != EINVAL)
            return -errno;
    }
    n->active_pairs = pairs;
    return 0;
}

/* The largest frame the tap may hand over, header included: whole 64 KiB
 * segments with segmentation offloads on, else the MTU with a VLAN tag
 * and the Ethernet header. */
static uint32_t largest_frame(const struct virtio_net *n, bool segments)
{
    uint16_t mtu;
    memcpy(&mtu, n->config + 10, sizeof(mtu));
    return VMM_VIRTIO_NET_HDR_SIZE + 18 + (segments ? 65535u : (mtu > 1500 ? mtu : 1500u));
}

/* What the guest accepted becomes what the tap hands it. */
static int set_offloads(struct virtio_net *n, uint64_t guest)
{
    unsigned flags = 0;
    if (guest >> VIRTIO_NET_F_GUEST_CSUM & 1) {
        flags |= TUN_F_CSUM;
        if (guest >> VIRTIO_NET_F_GUEST_TSO4 & 1)
            flags |= TUN_F_TSO4;
        if (guest >> VIRTIO_NET_F_GUEST_TSO6 & 1)
            flags |= TUN_F_TSO6;
        if (guest >> VIRTIO_NET_F_GUEST_ECN & 1 && flags & (TUN_F_TSO4 | TUN_F_TSO6))
            flags |= TUN_F_TSO_ECN;
        if (guest >> VIRTIO_NET_F_GUEST_UFO & 1)
            flags |= TUN_F_UFO;
    }
    if (ioctl(n->pair[0].tap_fd, TUNSETOFFLOAD, flags) < 0) {
        /* Kernels that dropped UFO refuse it; the rest still applies. */
        if (errno != EINVAL || !(flags & TUN_F_UFO) || ioctl(n->pair[0].tap_fd, TUNSETOFFLOAD, flags & ~TUN_F_UFO) < 0)
            return -errno;
    }
    n->rx_need = largest_frame(n, flags & (TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_UFO));
    n->offloads = guest;
    return 0;
}

static bool control(struct vmm_virtio *v, unsigned q, const struct vmm_virtq_chain *chain, uint32_t *written)
{
    struct virtio_net *n = net_of(v);
    (void)q;
    struct virtio_net_ctrl_hdr hdr;
    uint8_t ack = VIRTIO_NET_ERR;
    if (vmm_virtq_read(chain, 0, &hdr, sizeof(hdr)) == sizeof(hdr)) {
        if (hdr.class == VIRTIO_NET_CTRL_MQ && hdr.cmd == VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET) {
            uint16_t pairs;
            if (vmm_virtq_read(chain, sizeof(hdr), &pairs, sizeof(pairs)) == sizeof(pairs) &&
                pairs >= 1 && pairs <= n->pairs && set_active_pairs(n, pairs) == 0)
                ack = VIRTIO_NET_OK;
        } else if (hdr.class == VIRTIO_NET_CTRL_GUEST_OFFLOADS && hdr.cmd == VIRTIO_NET_CTRL_GUEST_OFFLOADS_SET) {
            uint64_t offloads;
            /* Only what was negotiated may be turned back on. */
            if (vmm_virtq_read(chain, sizeof(hdr), &offloads, sizeof(offloads)) == sizeof(offloads) &&
                !(offloads & ~v->driver_features) && set_offloads(n, offloads) == 0)
                ack = VIRTIO_NET_OK;
        }
    }
    *written = (uint32_t)vmm_virtq_write(chain, 0, &ack, sizeof(ack));
    return true;
}

static void queue_kick(struct vmm_virtio *v, unsigned q)
{
    struct virtio_net *n = net_of(v);
    if (q == ctrl_queue(n)) {
        virtio_serve_queue(v, q, &n->chain, control);
    } else if (q % 2) {
        virtio_serve_queue(v, q, &n->chain, transmit);
    } else {
        watch_tap(n, q / 2, true); /* new buffers: frames may flow again */
        receive(n, q / 2);
    }
}

static void fd_ready(struct vmm_virtio *v, int fd, uint32_t events)
{
    struct virtio_net *n = net_of(v);
    (void)events;
    if (fd == n->tx_timer_fd) {
        uint64_t expired;
        ssize_t ignored = read(fd, &expired, sizeof(expired));
        (void)ignored;
        n->tx_timer_armed = false;
        if (v->active)
            release_all_tx(n);
        return;
    }
    for (unsigned p = 0; p < n->pairs && v->active; p++)
        if (n->pair[p].tap_fd == fd)
            receive(n, p);
}

/* Buffers of a queue being reset or started again are the driver's anew. */
static void drop_stage(struct net_pair *pair)
{
    pair->tx_held = 0;
    pair->tx_held_bytes = 0;
    pair->held = false;
    pair->stage->chains = pair->stage->iovs = 0;
    pair->stage->bytes = 0;
}

static void activate(struct vmm_virtio *v)
{
    struct virtio_net *n = net_of(v);
    int ret = set_offloads(n, v->driver_features);
    if (ret == 0)
        ret = set_active_pairs(n, 1); /* until the driver asks for more (§5.1.6.5.5) */
    if (ret < 0 && vmm_ratelimit_allow(&n->tap_log))
        vmm_log_warn("%s: configuring the tap: %s", v->thread_name, strerror(-ret));
    for (unsigned p = 0; p < n->pairs; p++)
        drop_stage(&n->pair[p]);
}

/* A pause gives the receive buffers taken and not filled back to the
 * ring, oldest first, as they were never taken: the next frame (on this
 * run or a restored one) takes them again. */
static void settle(struct vmm_virtio *v)
{
    struct virtio_net *n = net_of(v);
    /* A held interrupt goes now: the timer does not run while paused,
     * and a snapshot keeps only what the guest has already been told. */
    release_all_tx(n);
    for (unsigned p = 0; p < n->pairs; p++) {
        struct net_pair *pair = &n->pair[p];
        v->queues[2 * p].vq.last_avail -= (uint16_t)(pair->stage->chains + pair->held);
        drop_stage(pair);
    }
}

struct net_state {
    uint64_t offloads;
    uint16_t active_pairs;
};
_Static_assert(sizeof(struct net_state) <= VMM_VIRTIO_STATE_DEVICE_BYTES, "virtio-net state fits the device bytes");

static void save(struct vmm_virtio *v, uint8_t *state)
{
    struct virtio_net *n = net_of(v);
    struct net_state s = { .offloads = n->offloads, .active_pairs = (uint16_t)n->active_pairs };
    memcpy(state, &s, sizeof(s));
}

/* After the restored activation, which set the offloads from the
 * features and one queue pair: what the driver had asked since. */
static void restore(struct vmm_virtio *v, const uint8_t *state)
{
    struct virtio_net *n = net_of(v);
    struct net_state s;
    memcpy(&s, state, sizeof(s));
    int ret = 0;
    if (!(s.offloads & ~v->driver_features) && s.offloads != n->offloads)
        ret = set_offloads(n, s.offloads);
    if (ret == 0 && s.active_pairs >= 1 && s.active_pairs <= n->pairs)
        ret = set_active_pairs(n, s.active_pairs);
    if (ret < 0 && vmm_ratelimit_allow(&n->tap_log))
        vmm_log_warn("%s: configuring the tap as it was: %s", v->thread_name, strerror(-ret));
}

static void reset(struct vmm_virtio *v)
{
    struct virtio_net *n = net_of(v);
    arm_tx_timer(n, false);
    for (unsigned p = 0; p < n->pairs; p++) {
        watch_tap(n, p, false);
        drop_stage(&n->pair[p]);
    }
}

static void destroy(struct vmm_virtio *v)
{
    struct virtio_net *n = net_of(v);
    for (unsigned p = 0; p < n->pairs; p++) {
        vmm_sparse_free(n->pair[p].rx);
        vmm_sparse_free(n->pair[p].stage);
    }
    if (n->tx_timer_fd >= 0)
        close(n->tx_timer_fd);
    vmm_sparse_free(n);
}

static const struct virtio_device_ops net_ops = {
    .device_id = VIRTIO_ID_NET,
    .pci_class = 0x020000, /* network, Ethernet */
    .batch_scheduled = true,
    .config_access = config_access,
    .activate = activate,
    .queue_kick = queue_kick,
    .completed = completed,
    .fd_ready = fd_ready,
    .settle = settle,
    .save = save,
    .restore = restore,
    .reset = reset,
    .destroy = destroy,
};

static uint64_t offered_features(const struct vmm_virtio_net_config *c)
{
    uint64_t f = 1ull << VIRTIO_NET_F_MAC | 1ull << VIRTIO_NET_F_STATUS | 1ull << VIRTIO_NET_F_CTRL_VQ |
                 1ull << VIRTIO_NET_F_MTU | 1ull << VIRTIO_NET_F_MRG_RXBUF;
    if (c->queue_pairs > 1)
        f |= 1ull << VIRTIO_NET_F_MQ;
    if (c->offload_csum) {
        f |= 1ull << VIRTIO_NET_F_CSUM | 1ull << VIRTIO_NET_F_GUEST_CSUM | 1ull << VIRTIO_NET_F_CTRL_GUEST_OFFLOADS;
        if (c->offload_tso)
            f |= 1ull << VIRTIO_NET_F_HOST_TSO4 | 1ull << VIRTIO_NET_F_HOST_TSO6 | 1ull << VIRTIO_NET_F_HOST_ECN |
                 1ull << VIRTIO_NET_F_GUEST_TSO4 | 1ull << VIRTIO_NET_F_GUEST_TSO6 | 1ull << VIRTIO_NET_F_GUEST_ECN;
        if (c->offload_ufo)
            f |= 1ull << VIRTIO_NET_F_HOST_UFO | 1ull << VIRTIO_NET_F_GUEST_UFO;
    }
    return f;
}

int vmm_virtio_net_create(struct vmm_vm *vm, const struct vmm_virtio_net_config *c, struct vmm_virtio **out)
{
    if (c->queue_pairs == 0 || c->queue_pairs > VMM_VIRTIO_NET_MAX_PAIRS)
        return -EINVAL;
    struct virtio_net *n = vmm_sparse_alloc(sizeof(*n) + c->queue_pairs * sizeof(struct net_pair));
    if (!n)
        return -ENOMEM;
    n->pairs = n->active_pairs = c->queue_pairs;
    memcpy(n->config, c->mac, 6);
    uint16_t status = VIRTIO_NET_S_LINK_UP, pairs = c->queue_pairs, mtu = c->mtu;
    memcpy(n->config + 6, &status, 2);
    memcpy(n->config + 8, &pairs, 2);
    memcpy(n->config + 10, &mtu, 2);
    n->rx_need = largest_frame(n, false); /* a new tap has no offloads */
    n->tx_timer_fd = -1;
    int ret = virtio_init(&n->v, vm, &net_ops, c->thread_name, offered_features(c), 2 * c->queue_pairs + 1,
                          c->queue_size);
    if (ret == 0) {
        n->tx_timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
        ret = n->tx_timer_fd < 0 ? -errno : virtio_watch(&n->v, n->tx_timer_fd, EPOLLIN, true);
    }
    for (unsigned p = 0; ret == 0 && p < c->queue_pairs; p++) {
        n->pair[p].tap_fd = c->tap_fds[p];
        /* Registered unwatched; activation's first receive turns it on. */
        n->pair[p].rx = vmm_sparse_alloc(sizeof(*n->pair[p].rx));
        /* Only what a frame touches of the stage's arrays becomes resident. */
        n->pair[p].stage = vmm_sparse_alloc(sizeof(*n->pair[p].stage));
        if (n->pair[p].stage)
            drop_stage(&n->pair[p]);
        ret = n->pair[p].rx && n->pair[p].stage ? virtio_watch(&n->v, c->tap_fds[p], 0, true) : -ENOMEM;
    }
    if (ret < 0) {
        virtio_destroy(&n->v);
        destroy(&n->v);
        return ret;
    }
    *out = &n->v;
    return 0;
}
