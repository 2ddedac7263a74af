/* A virtio device served by a vhost-user backend. The transport is this
 * VMM's as for any device (config space, MSI-X, notify addresses); at
 * DRIVER_OK the backend gets the negotiated features, the RAM table and
 * each queue: its rings, its notify ioeventfd as the kick, its MSI-X
 * vector's irqfd eventfd as the call. The device thread only hands them
 * over, takes them back on reset (GET_VRING_BASE) and watches the socket:
 * a backend that goes away stops the device, not the VMM. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <stdatomic.h>
#include <unistd.h>

#include "virtio/vhost_user_dev.h"

#define MAX_QUEUES 64

static struct vhost_user_dev *dev_of(struct vmm_virtio *v) { return (struct vhost_user_dev *)v; }

void vhost_user_dev_config(struct vmm_virtio *v, uint32_t offset, uint8_t *data, uint32_t size, bool is_write)
{
    struct vhost_user_dev *d = dev_of(v);
    if (is_write)
        return; /* nothing in these devices' config is the driver's to write */
    for (uint32_t i = 0; i < size; i++)
        data[i] = offset + i < d->config_size ? d->config[offset + i] : 0;
}

static void stop_rings(struct vhost_user_dev *d)
{
    for (unsigned i = 0; i < MAX_QUEUES; i++)
        if (d->started >> i & 1)
            vhost_user_stop_vring(d->backend, i);
    d->started = 0;
}

static void broken(struct vhost_user_dev *d, const char *what, int error)
{
    /* A backend that went away, or fell out of step, is not asked again. */
    bool gone = atomic_load(&d->backend->gone);
    if (vmm_ratelimit_allow(&d->v.broken_log))
        vmm_log_warn("%s: the vhost-user backend %s (%s); the device %s", d->v.thread_name, what, strerror(-error),
                     gone ? "stays stopped" : "stops until the guest resets it");
    virtio_needs_reset(&d->v);
}

void vhost_user_dev_activate(struct vmm_virtio *v)
{
    struct vhost_user_dev *d = dev_of(v);
    if (atomic_load(&d->backend->gone)) {
        broken(d, "is gone", -ECONNRESET);
        return;
    }
    int r = vhost_user_set_features(d->backend, v->driver_features);
    if (r == 0)
        r = vhost_user_send_memory(d->backend, &v->mem, true);
    for (unsigned i = 0; r == 0 && i < v->nqueues; i++) {
        struct virtio_queue *q = &v->queues[i];
        if (!q->enabled)
            continue;
        struct vhost_user_vring ring = {
            .index = i, .size = q->size,
            .desc = (uint64_t)(uintptr_t)q->vq.desc, .avail = (uint64_t)(uintptr_t)q->vq.avail,
            .used = (uint64_t)(uintptr_t)q->vq.used,
            .kick_fd = q->kick_fd, .call_fd = v->vector_eventfd(v->transport, q->live_vector),
        };
        if (ring.call_fd < 0)
            ring.call_fd = d->idle_call_fd;
        r = vhost_user_start_vring(d->backend, &ring);
        /* Taken back on failure too: the backend may hold part of it. */
        d->started |= 1ull << i;
    }
    if (r < 0) {
        stop_rings(d);
        broken(d, r == -ETIMEDOUT ? "did not answer the device's start in time" : "refused the device's start", r);
    }
}

void vhost_user_dev_kick(struct vmm_virtio *v, unsigned q)
{
    (void)v; /* the backend takes the kicks itself */
    (void)q;
}

void vhost_user_dev_fd_ready(struct vmm_virtio *v, int fd, uint32_t events)
{
    struct vhost_user_dev *d = dev_of(v);
    if (fd != d->backend->fd || !(events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)))
        return;
    atomic_store(&d->backend->gone, true);
    virtio_unwatch(v, fd); /* a hung-up socket would wake the thread forever */
    broken(d, "closed its socket", -ECONNRESET);
}

void vhost_user_dev_reset(struct vmm_virtio *v)
{
    stop_rings(dev_of(v));
}

void vhost_user_dev_destroy(struct vmm_virtio *v)
{
    struct vhost_user_dev *d = dev_of(v);
    /* The backend lets go of this boot's rings before its RAM goes. */
    if (d->backend && !atomic_load(&d->backend->gone))
        stop_rings(d);
    vhost_user_release(d->backend);
    if (d->idle_call_fd >= 0)
        close(d->idle_call_fd);
    free(d);
}

int vhost_user_dev_create(struct vmm_vm *vm, const struct virtio_device_ops *ops, size_t object_size,
                          struct vmm_vhost_user *backend, uint64_t supported, unsigned nqueues, uint16_t queue_size,
                          const char *thread_name, struct vhost_user_dev **out)
{
    if (nqueues > MAX_QUEUES || (backend->max_queues && nqueues > backend->max_queues))
        return -E2BIG;
    struct vhost_user_dev *d = calloc(1, object_size);
    if (!d)
        return -ENOMEM;
    d->idle_call_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (d->idle_call_fd < 0) {
        int saved = -errno;
        free(d);
        return saved;
    }
    int r = virtio_init(&d->v, vm, ops, thread_name, 0, nqueues, queue_size);
    if (r == 0) {
        d->backend = backend;
        vhost_user_hold(backend);
        d->v.features = backend->features & supported;
        /* A backend that cannot be reset is as good as gone: the device
         * comes up stopped rather than the boot failing. */
        if (!atomic_load(&backend->gone) && vhost_user_new_boot(backend) < 0) {
            atomic_store(&backend->gone, true);
            vmm_log_warn("%s: the vhost-user backend did not take the reset for a new boot; the device stays stopped",
                         thread_name);
        }
    }
    if (r == 0) {
        /* Hang-ups only: replies are read where they are awaited. */
        r = virtio_watch(&d->v, backend->fd, EPOLLRDHUP, true);
    }
    if (r < 0) {
        virtio_destroy(&d->v);
        vhost_user_dev_destroy(&d->v);
        return r;
    }
    *out = d;
    return 0;
}

int vmm_vhost_user_sync_memory(struct vmm_virtio *device)
{
    if (!device->ops->external_queues)
        return 0;
    return vhost_user_send_memory(dev_of(device)->backend, &device->mem, false);
}
