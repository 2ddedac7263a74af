/* virtio-net (virtio 1.2 §5.1) on a tap: one tap queue per queue pair.
 * Frames move between the guest's buffers and the tap with one readv or
 * writev each, the 12-byte virtio-net header included, so checksum and
 * segmentation offloads pass through untouched (the tap checks the
 * guest's headers; one it refuses is a dropped frame).
 *
 * Receive never takes a frame from the tap without a guest buffer to put
 * it in: with no buffers the tap is unwatched until the guest kicks, and
 * frames wait in the tap's own bounded queue, not in the VMM. */
#include <errno.h>
#include <stdatomic.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <linux/virtio_ids.h>
#include <linux/virtio_net.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/uio.h>
#include <unistd.h>

#include "virtio/virtio_dev.h"
#include "net/vmm_tap.h"

#define RX_BUDGET 64 /* frames per wakeup before transmit gets its turn */

struct net_pair {
    int tap_fd;
    bool watched;  /* tap's EPOLLIN is on the thread's epoll set */
    bool held;     /* `rx` holds a popped buffer no frame has filled yet */
    struct vmm_virtq_chain *rx;
};

struct virtio_net {
    struct vmm_virtio v;
    unsigned pairs, active_pairs;
    uint8_t config[12]; /* mac, status, max_virtqueue_pairs, mtu */
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

/* The tap's frames into the guest's receive buffers of pair `p`, until
 * either runs out or the budget does. */
static void receive(struct virtio_net *n, unsigned p)
{
    struct net_pair *pair = &n->pair[p];
    struct vmm_virtq *q = &n->v.queues[2 * p].vq;
    unsigned done = 0;
    for (unsigned budget = RX_BUDGET; budget && n->v.active; budget--) {
        if (!pair->held) {
            int r = vmm_virtq_pop(q, &n->v.mem, pair->rx);
            if (r < 0) {
                virtio_fail(&n->v, 2 * p, r);
                break;
            }
            if (r == 0) {
                if (vmm_virtq_rearm(q))
                    continue;
                watch_tap(n, p, false); /* until the guest gives buffers */
                break;
            }
            pair->held = true;
        }
        int count = vmm_virtq_iov(pair->rx, true, 0, pair->rx->writable, n->iov, VMM_VIRTQ_MAX_CHAIN);
        if (count <= 0 || pair->rx->writable < VMM_VIRTIO_NET_HDR_SIZE) {
            /* Not a receive buffer: returned empty, as the driver asked for nothing. */
            vmm_virtq_push(q, pair->rx->head, 0);
            pair->held = false;
            done++;
            continue;
        }
        ssize_t got = readv(pair->tap_fd, n->iov, count);
        if (got < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN && vmm_ratelimit_allow(&n->tap_log))
                vmm_log_warn("%s: reading the tap: %s", n->v.thread_name, strerror(errno));
            break; /* the buffer stays held for the next frame */
        }
        /* Without mergeable buffers every frame takes exactly one. */
        uint16_t one = 1;
        vmm_virtq_write(pair->rx, 10, &one, sizeof(one));
        uint64_t written = (uint64_t)got < pair->rx->writable ? (uint64_t)got : pair->rx->writable;
        vmm_virtq_push(q, pair->rx->head, (uint32_t)written);
        atomic_fetch_add_explicit(&n->rx_bytes, (uint64_t)got, memory_order_relaxed);
        atomic_fetch_add_explicit(&n->rx_frames, 1, memory_order_relaxed);
        pair->held = false;
        done++;
    }
    if (done)
        virtio_queue_signal(&n->v, 2 * p);
}

static bool transmit(struct vmm_virtio *v, unsigned q, const struct vmm_virtq_chain *chain, uint32_t *written)
{
    struct virtio_net *n = net_of(v);
    *written = 0;
    int count = vmm_virtq_iov(chain, false, 0, chain->readable, n->iov, VMM_VIRTQ_MAX_CHAIN);
    if (count <= 0 || chain->readable < VMM_VIRTIO_NET_HDR_SIZE)
        return true; /* no header: nothing to send */
    ssize_t sent;
    do {
        sent = writev(n->pair[q / 2].tap_fd, n->iov, count);
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
    if (ioctl(n->pair[0].tap_fd, TUNSETOFFLOAD, flags) == 0)
        return 0;
    /* Kernels that dropped UFO refuse it; the rest still applies. */
    if (errno == EINVAL && flags & TUN_F_UFO && ioctl(n->pair[0].tap_fd, TUNSETOFFLOAD, flags & ~TUN_F_UFO) == 0)
        return 0;
    return -errno;
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
    for (unsigned p = 0; p < n->pairs && v->active; p++)
        if (n->pair[p].tap_fd == fd)
            receive(n, p);
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
        n->pair[p].held = false;
}

static void reset(struct vmm_virtio *v)
{
    struct virtio_net *n = net_of(v);
    for (unsigned p = 0; p < n->pairs; p++) {
        watch_tap(n, p, false);
        n->pair[p].held = false;
    }
}

static void destroy(struct vmm_virtio *v)
{
    struct virtio_net *n = net_of(v);
    for (unsigned p = 0; p < n->pairs; p++)
        free(n->pair[p].rx);
    free(n);
}

static const struct virtio_device_ops net_ops = {
    .device_id = VIRTIO_ID_NET,
    .pci_class = 0x020000, /* network, Ethernet */
    .config_access = config_access,
    .activate = activate,
    .queue_kick = queue_kick,
    .fd_ready = fd_ready,
    .reset = reset,
    .destroy = destroy,
};

static uint64_t offered_features(const struct vmm_virtio_net_config *c)
{
    uint64_t f = 1ull << VIRTIO_NET_F_MAC | 1ull << VIRTIO_NET_F_STATUS | 1ull << VIRTIO_NET_F_CTRL_VQ |
                 1ull << VIRTIO_NET_F_MTU;
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
    struct virtio_net *n = calloc(1, sizeof(*n) + c->queue_pairs * sizeof(struct net_pair));
    if (!n)
        return -ENOMEM;
    n->pairs = n->active_pairs = c->queue_pairs;
    memcpy(n->config, c->mac, 6);
    uint16_t status = VIRTIO_NET_S_LINK_UP, pairs = c->queue_pairs, mtu = c->mtu;
    memcpy(n->config + 6, &status, 2);
    memcpy(n->config + 8, &pairs, 2);
    memcpy(n->config + 10, &mtu, 2);
    int ret = virtio_init(&n->v, vm, &net_ops, c->thread_name, offered_features(c), 2 * c->queue_pairs + 1,
                          c->queue_size);
    for (unsigned p = 0; ret == 0 && p < c->queue_pairs; p++) {
        n->pair[p].tap_fd = c->tap_fds[p];
        /* Registered unwatched; activation's first receive turns it on. */
        n->pair[p].rx = malloc(sizeof(*n->pair[p].rx));
        ret = n->pair[p].rx ? virtio_watch(&n->v, c->tap_fds[p], 0, true) : -ENOMEM;
    }
    if (ret < 0) {
        virtio_destroy(&n->v);
        destroy(&n->v);
        return ret;
    }
    *out = &n->v;
    return 0;
}
