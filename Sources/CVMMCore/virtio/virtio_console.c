/* virtio-console (virtio 1.2 §5.3), one port: the guest's hvc0. Output
 * goes to a host fd; input from another host fd fills the guest's receive
 * buffers, and waits (its fd unwatched) while the guest has none. */
#include <errno.h>
#include <linux/virtio_console.h>
#include <linux/virtio_ids.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "common/sparse.h"
#include "virtio/virtio_dev.h"

enum { RX_QUEUE = 0, TX_QUEUE = 1 };
#define INPUT_CHUNK 4096

struct virtio_console {
    struct vmm_virtio v;
    int in_fd, out_fd;
    bool watching;      /* in_fd is on the thread's epoll set */
    bool input_paused;  /* watched with no events: no receive buffers */
    bool input_ended;
    uint8_t pending[INPUT_CHUNK];
    size_t pending_len;
    struct vmm_virtq_chain chain;
};

static struct virtio_console *console_of(struct vmm_virtio *v) { return (struct virtio_console *)v; }

static void config_access(struct vmm_virtio *v, uint32_t offset, uint8_t *data, uint32_t size, bool is_write)
{
    (void)v;
    (void)offset;
    if (!is_write)
        memset(data, 0, size); /* cols, rows, ports: no F_SIZE, no MULTIPORT */
}

static void write_all(int fd, const uint8_t *p, uint64_t len)
{
    while (fd >= 0 && len) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return; /* a closed terminal must not stop the guest */
        p += n;
        len -= (uint64_t)n;
    }
}

static bool transmit(struct vmm_virtio *v, unsigned q, const struct vmm_virtq_chain *chain, uint32_t *written)
{
    (void)q;
    for (unsigned i = 0; i < chain->count; i++)
        if (!chain->bufs[i].writable)
            write_all(console_of(v)->out_fd, chain->bufs[i].hva, chain->bufs[i].len);
    *written = 0;
    return true;
}

/* Moves pending input into receive buffers; true when all of it fitted. */
static bool deliver(struct virtio_console *c)
{
    struct vmm_virtq *q = &c->v.queues[RX_QUEUE].vq;
    unsigned done = 0;
    while (c->pending_len) {
        int r = vmm_virtq_pop(q, &c->v.mem, &c->chain);
        if (r < 0) {
            virtio_fail(&c->v, RX_QUEUE, r);
            return false;
        }
        if (r == 0 && !vmm_virtq_rearm(q))
            break;
        if (r == 0)
            continue;
        uint64_t n = vmm_virtq_write(&c->chain, 0, c->pending, c->pending_len);
        memmove(c->pending, c->pending + n, c->pending_len - n);
        c->pending_len -= n;
        vmm_virtq_push(q, c->chain.head, (uint32_t)n);
        done++;
    }
    if (done)
        virtio_queue_signal(&c->v, RX_QUEUE);
    return c->pending_len == 0;
}

static void set_input(struct virtio_console *c, bool on)
{
    if (!c->watching || c->input_ended || c->input_paused == !on)
        return;
    if (virtio_watch(&c->v, c->in_fd, on ? EPOLLIN : 0, false) == 0)
        c->input_paused = !on;
}

static void fd_ready(struct vmm_virtio *v, int fd, uint32_t events)
{
    struct virtio_console *c = console_of(v);
    (void)events;
    if (fd != c->in_fd || !v->active || c->pending_len)
        return;
    ssize_t n = read(c->in_fd, c->pending, sizeof(c->pending));
    if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN)) {
        set_input(c, false); /* end of input: the guest runs on without it */
        c->input_ended = true;
        return;
    }
    if (n > 0)
        c->pending_len = (size_t)n;
    if (!deliver(c))
        set_input(c, false);
}

static void queue_kick(struct vmm_virtio *v, unsigned q)
{
    struct virtio_console *c = console_of(v);
    if (q == TX_QUEUE) {
        virtio_serve_queue(v, q, &c->chain, transmit);
    } else if (deliver(c)) {
        set_input(c, true); /* the guest gave buffers: read input again */
    }
}

static void activate(struct vmm_virtio *v)
{
    struct virtio_console *c = console_of(v);
    /* A regular file cannot be polled: such input is left unread. */
    if (c->in_fd >= 0 && !c->watching && !c->input_ended)
        c->watching = virtio_watch(v, c->in_fd, EPOLLIN, true) == 0;
    c->input_paused = false;
}

static void reset(struct vmm_virtio *v)
{
    set_input(console_of(v), false);
}

static void destroy(struct vmm_virtio *v) { vmm_sparse_free(v); }

static const struct virtio_device_ops console_ops = {
    .device_id = VIRTIO_ID_CONSOLE,
    .pci_class = 0x078000, /* communication, other */
    .config_access = config_access,
    .activate = activate,
    .queue_kick = queue_kick,
    .fd_ready = fd_ready,
    .reset = reset,
    .destroy = destroy,
};

int vmm_virtio_console_create(struct vmm_vm *vm, int in_fd, int out_fd, struct vmm_virtio **out)
{
    struct virtio_console *c = vmm_sparse_alloc(sizeof(*c));
    if (!c)
        return -ENOMEM;
    c->in_fd = in_fd;
    c->out_fd = out_fd;
    int ret = virtio_init(&c->v, vm, &console_ops, "virtio-console", 0, 2, 128);
    if (ret < 0) {
        virtio_destroy(&c->v);
        vmm_sparse_free(c);
        return ret;
    }
    *out = &c->v;
    return 0;
}
