/* The vhost-user frontend: see vhost_user.h. Every reply is awaited with a
 * deadline, so a backend that hangs costs its device, never the VMM; a
 * reply that does not come (or comes malformed) ends the conversation for
 * good, as its late arrival would be read as the answer to a later request. */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "vhost/vhost_user.h"
#include "virtio/vmm_virtio.h"

enum {
    GET_FEATURES = 1, SET_FEATURES = 2, SET_OWNER = 3, RESET_OWNER = 4, SET_MEM_TABLE = 5, SET_VRING_NUM = 8,
    SET_VRING_ADDR = 9, SET_VRING_BASE = 10, GET_VRING_BASE = 11, SET_VRING_KICK = 12, SET_VRING_CALL = 13,
    GET_PROTOCOL_FEATURES = 15, SET_PROTOCOL_FEATURES = 16, GET_QUEUE_NUM = 17, SET_VRING_ENABLE = 18,
    GET_CONFIG = 24, RESET_DEVICE = 34, ADD_MEM_REG = 37,
};
#define FLAG_VERSION 0x1u
#define FLAG_REPLY 0x4u
#define FLAG_NEED_REPLY 0x8u
#define HANDSHAKE_TIMEOUT_MS 5000
#define MAX_PAYLOAD 512

#define WANTED_PROTOCOL ((1ull << VHOST_USER_PROTOCOL_F_MQ) | (1ull << VHOST_USER_PROTOCOL_F_REPLY_ACK) | \
                         (1ull << VHOST_USER_PROTOCOL_F_CONFIG) | (1ull << VHOST_USER_PROTOCOL_F_CONFIGURE_MEM_SLOTS) | \
                         (1ull << VHOST_USER_PROTOCOL_F_RESET_DEVICE))

struct header {
    uint32_t request, flags, size;
};

struct region {
    uint64_t gpa, size, uaddr, mmap_offset;
};

struct vring_state {
    uint32_t index, num;
};

struct vring_addr {
    uint32_t index, flags;
    uint64_t desc, used, avail, log;
};

bool vhost_user_has_protocol(const struct vmm_vhost_user *u, unsigned bit) { return u->protocol_features >> bit & 1; }

static int send_msg(struct vmm_vhost_user *u, uint32_t request, uint32_t flags, const void *payload, uint32_t size,
                    const int *fds, unsigned nfds)
{
    if (atomic_load(&u->gone))
        return -ECONNRESET; /* closed, or out of step: nothing more is asked */
    struct header h = { request, FLAG_VERSION | flags, size };
    struct iovec iov[2] = { { &h, sizeof(h) }, { (void *)payload, size } };
    union {
        char buf[CMSG_SPACE(sizeof(int) * VHOST_USER_MAX_RAM_SLOTS)];
        struct cmsghdr align;
    } control;
    struct msghdr msg = { .msg_iov = iov, .msg_iovlen = size ? 2 : 1 };
    if (nfds) {
        memset(&control, 0, sizeof(control));
        msg.msg_control = control.buf;
        msg.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
        struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
        memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
    }
    ssize_t n;
    do {
        n = sendmsg(u->fd, &msg, MSG_NOSIGNAL);
    } while (n < 0 && errno == EINTR);
    if (n < 0)
        return -errno;
    return (size_t)n == sizeof(h) + size ? 0 : -EPIPE;
}

static int read_exact(int fd, void *p, size_t len, int timeout_ms)
{
    uint8_t *at = p;
    while (len) {
        struct pollfd pfd = { .fd = fd, .events = POLLIN };
        int r = poll(&pfd, 1, timeout_ms);
        if (r < 0 && errno == EINTR)
            continue;
        if (r == 0)
            return -ETIMEDOUT;
        ssize_t n = read(fd, at, len);
        if (n < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (n <= 0)
            return n < 0 ? -errno : -ECONNRESET;
        at += n;
        len -= (size_t)n;
    }
    return 0;
}

/* The backend's reply to `request`, exactly `size` bytes of payload. */
static int recv_reply(struct vmm_vhost_user *u, uint32_t request, void *payload, uint32_t size)
{
    struct header h;
    int timeout = u->greeted ? VHOST_USER_REPLY_TIMEOUT_MS : HANDSHAKE_TIMEOUT_MS;
    int r = read_exact(u->fd, &h, sizeof(h), timeout);
    if (r == 0 && (h.request != request || !(h.flags & FLAG_REPLY) || h.size != size || h.size > MAX_PAYLOAD))
        r = -EPROTO;
    if (r == 0)
        r = read_exact(u->fd, payload, size, timeout);
    if (r < 0)
        atomic_store(&u->gone, true); /* out of step with the backend from here on */
    return r;
}

/* A request without a reply of its own: with REPLY_ACK, the backend's
 * verdict is awaited. */
static int request(struct vmm_vhost_user *u, uint32_t req, const void *payload, uint32_t size, const int *fds, unsigned nfds)
{
    bool ack = vhost_user_has_protocol(u, VHOST_USER_PROTOCOL_F_REPLY_ACK);
    int r = send_msg(u, req, ack ? FLAG_NEED_REPLY : 0, payload, size, fds, nfds);
    if (r < 0 || !ack)
        return r;
    uint64_t status;
    r = recv_reply(u, req, &status, sizeof(status));
    return r < 0 ? r : status ? -EIO : 0;
}

static int get_u64(struct vmm_vhost_user *u, uint32_t req, uint64_t *out)
{
    int r = send_msg(u, req, 0, NULL, 0, NULL, 0);
    return r < 0 ? r : recv_reply(u, req, out, sizeof(*out));
}

static int handshake(struct vmm_vhost_user *u)
{
    int r = get_u64(u, GET_FEATURES, &u->features);
    if (r == 0 && (u->features >> VHOST_USER_F_PROTOCOL_FEATURES & 1)) {
        uint64_t offered;
        if ((r = get_u64(u, GET_PROTOCOL_FEATURES, &offered)) == 0) {
            uint64_t taken = offered & WANTED_PROTOCOL;
            r = send_msg(u, SET_PROTOCOL_FEATURES, 0, &taken, sizeof(taken), NULL, 0);
            if (r == 0)
                u->protocol_features = taken;
        }
    }
    uint64_t queues = 0;
    if (r == 0 && vhost_user_has_protocol(u, VHOST_USER_PROTOCOL_F_MQ) && (r = get_u64(u, GET_QUEUE_NUM, &queues)) == 0)
        u->max_queues = (unsigned)(queues < 1024 ? queues : 1024);
    if (r == 0)
        r = request(u, SET_OWNER, NULL, 0, NULL, 0);
    return r;
}

int vmm_vhost_user_connect(int fd, struct vmm_vhost_user **out)
{
    struct vmm_vhost_user *u = calloc(1, sizeof(*u));
    if (!u) {
        close(fd);
        return -ENOMEM;
    }
    u->fd = fd;
    atomic_init(&u->refs, 1);
    pthread_mutex_init(&u->lock, NULL);
    int r = handshake(u);
    u->greeted = true;
    if (r == 0 && !(u->features >> 32 & 1))
        r = -EPROTONOSUPPORT; /* VIRTIO_F_VERSION_1: a legacy-only backend */
    if (r < 0) {
        vmm_vhost_user_close(u);
        return r;
    }
    *out = u;
    return 0;
}

void vhost_user_hold(struct vmm_vhost_user *u) { atomic_fetch_add(&u->refs, 1); }

void vhost_user_release(struct vmm_vhost_user *u)
{
    if (!u || atomic_fetch_sub(&u->refs, 1) != 1)
        return;
    close(u->fd);
    pthread_mutex_destroy(&u->lock);
    free(u);
}

void vmm_vhost_user_close(struct vmm_vhost_user *u) { vhost_user_release(u); }

unsigned vmm_vhost_user_max_queues(const struct vmm_vhost_user *u) { return u->max_queues; }

int vhost_user_new_boot(struct vmm_vhost_user *u)
{
    pthread_mutex_lock(&u->lock);
    int r = 0;
    if (u->boots++ > 0) {
        /* RESET_OWNER is the old name of the same request, for backends without RESET_DEVICE. */
        bool device = vhost_user_has_protocol(u, VHOST_USER_PROTOCOL_F_RESET_DEVICE);
        r = request(u, device ? RESET_DEVICE : RESET_OWNER, NULL, 0, NULL, 0);
    }
    u->regions_sent = 0;
    pthread_mutex_unlock(&u->lock);
    return r;
}

int vhost_user_set_features(struct vmm_vhost_user *u, uint64_t features)
{
    /* The protocol features stay on: without this bit the backend would
     * take them back (and enable rings at kick instead of on request). */
    if (u->features >> VHOST_USER_F_PROTOCOL_FEATURES & 1)
        features |= 1ull << VHOST_USER_F_PROTOCOL_FEATURES;
    pthread_mutex_lock(&u->lock);
    int r = request(u, SET_FEATURES, &features, sizeof(features), NULL, 0);
    pthread_mutex_unlock(&u->lock);
    return r;
}

static struct region region_of(const struct vmm_mem_region *r)
{
    return (struct region){ r->gpa, r->size, (uint64_t)(uintptr_t)r->hva, 0 };
}

int vhost_user_send_memory(struct vmm_vhost_user *u, const struct vmm_gmem *mem, bool whole)
{
    unsigned count = vmm_gmem_count(mem);
    if (count > VHOST_USER_MAX_RAM_SLOTS)
        return -E2BIG;
    for (unsigned i = 0; i < count; i++)
        if (mem->regions[i].fd < 0)
            return -EINVAL; /* private RAM: the backend cannot map it */
    pthread_mutex_lock(&u->lock);
    int r = 0;
    bool slots = vhost_user_has_protocol(u, VHOST_USER_PROTOCOL_F_CONFIGURE_MEM_SLOTS);
    if (!whole && u->regions_sent == 0) {
        /* The backend has no table yet: the device's start sends it whole. */
    } else if (whole || !slots) {
        struct {
            uint32_t nregions, padding;
            struct region regions[VHOST_USER_MAX_RAM_SLOTS];
        } table = { count, 0, { { 0 } } };
        int fds[VHOST_USER_MAX_RAM_SLOTS];
        for (unsigned i = 0; i < count; i++) {
            table.regions[i] = region_of(&mem->regions[i]);
            fds[i] = mem->regions[i].fd;
        }
        r = request(u, SET_MEM_TABLE, &table, (uint32_t)(8 + count * sizeof(struct region)), fds, count);
    } else {
        for (unsigned i = u->regions_sent; i < count && r == 0; i++) {
            struct {
                uint64_t padding;
                struct region region;
            } add = { 0, region_of(&mem->regions[i]) };
            r = request(u, ADD_MEM_REG, &add, sizeof(add), &mem->regions[i].fd, 1);
        }
    }
    if (r == 0)
        u->regions_sent = count;
    pthread_mutex_unlock(&u->lock);
    return r;
}

int vhost_user_start_vring(struct vmm_vhost_user *u, const struct vhost_user_vring *v)
{
    struct vring_state num = { v->index, v->size }, base = { v->index, 0 }, enable = { v->index, 1 };
    struct vring_addr addr = { v->index, 0, v->desc, v->used, v->avail, 0 };
    uint64_t index = v->index;
    pthread_mutex_lock(&u->lock);
    int r = request(u, SET_VRING_NUM, &num, sizeof(num), NULL, 0);
    if (r == 0)
        r = request(u, SET_VRING_ADDR, &addr, sizeof(addr), NULL, 0);
    if (r == 0)
        r = request(u, SET_VRING_BASE, &base, sizeof(base), NULL, 0);
    if (r == 0)
        r = request(u, SET_VRING_CALL, &index, sizeof(index), &v->call_fd, 1);
    if (r == 0)
        r = request(u, SET_VRING_KICK, &index, sizeof(index), &v->kick_fd, 1);
    /* With protocol features, rings start disabled until enabled. */
    if (r == 0 && (u->features >> VHOST_USER_F_PROTOCOL_FEATURES & 1))
        r = request(u, SET_VRING_ENABLE, &enable, sizeof(enable), NULL, 0);
    pthread_mutex_unlock(&u->lock);
    return r;
}

int vhost_user_stop_vring(struct vmm_vhost_user *u, unsigned index)
{
    struct vring_state state = { index, 0 };
    pthread_mutex_lock(&u->lock);
    int r = 0;
    if (u->features >> VHOST_USER_F_PROTOCOL_FEATURES & 1)
        r = request(u, SET_VRING_ENABLE, &state, sizeof(state), NULL, 0);
    /* GET_VRING_BASE has a reply of its own: the ring's last index. */
    if (r == 0)
        r = send_msg(u, GET_VRING_BASE, 0, &state, sizeof(state), NULL, 0);
    if (r == 0)
        r = recv_reply(u, GET_VRING_BASE, &state, sizeof(state));
    pthread_mutex_unlock(&u->lock);
    return r;
}

int vhost_user_get_config(struct vmm_vhost_user *u, uint32_t offset, uint8_t *data, uint32_t size)
{
    struct {
        uint32_t offset, size, flags;
        uint8_t data[256];
    } config = { offset, size, 0, { 0 } };
    if (!vhost_user_has_protocol(u, VHOST_USER_PROTOCOL_F_CONFIG) || size > sizeof(config.data))
        return -ENOTSUP;
    uint32_t len = 12 + size;
    pthread_mutex_lock(&u->lock);
    int r = send_msg(u, GET_CONFIG, 0, &config, len, NULL, 0);
    if (r == 0)
        r = recv_reply(u, GET_CONFIG, &config, len);
    pthread_mutex_unlock(&u->lock);
    if (r == 0)
        memcpy(data, config.data, size);
    return r;
}
