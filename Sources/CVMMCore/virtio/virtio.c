/* The virtio device core: feature and status handshake, queue setup, and
 * the device thread that waits on the queues' kick eventfds. */
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "common/vmm_sys.h"
#include "virtio/virtio_dev.h"
#include "vm/vm_internal.h"

#define TAG_CTL 0xffffffffu
#define TAG_FD  0x100000000ull /* plus the fd: a device's own fd */

/* What every device offers: version 1, indirect descriptors, event idx. */
#define COMMON_FEATURES ((1ull << VIRTIO_F_VERSION_1) | (1ull << 28 /* INDIRECT_DESC */) | \
                         (1ull << 29 /* EVENT_IDX */))

static int epoll_add(int epfd, int fd, uint32_t events, uint64_t tag)
{
    struct epoll_event ev = { .events = events, .data.u64 = tag };
    return epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) < 0 ? -errno : 0;
}

int virtio_init(struct vmm_virtio *v, struct vmm_vm *vm, const struct virtio_device_ops *ops,
                const char *thread_name, uint64_t device_features, unsigned nqueues, uint16_t queue_size)
{
    if (nqueues == 0 || queue_size == 0 || queue_size > VMM_VIRTQ_MAX_SIZE || (queue_size & (queue_size - 1)))
        return -EINVAL;
    v->ops = ops;
    v->vm = vm;
    v->mem = vmm_memory_view(vm);
    snprintf(v->thread_name, sizeof(v->thread_name), "%s", thread_name);
    pthread_mutex_init(&v->lock, NULL);
    pthread_cond_init(&v->acked, NULL);
    v->features = device_features | COMMON_FEATURES;
    v->config_vector = VIRTIO_NO_VECTOR;
    v->epoll_fd = v->ctl_fd = -1;
    v->queues = calloc(nqueues, sizeof(*v->queues));
    if (!v->queues)
        return -ENOMEM;
    v->nqueues = nqueues;
    for (unsigned i = 0; i < nqueues; i++)
        v->queues[i] = (struct virtio_queue){ .max_size = queue_size, .size = queue_size,
                                              .vector = VIRTIO_NO_VECTOR, .kick_fd = -1 };
    v->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
    v->ctl_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (v->epoll_fd < 0 || v->ctl_fd < 0)
        return -errno;
    int ret = epoll_add(v->epoll_fd, v->ctl_fd, EPOLLIN, TAG_CTL);
    for (unsigned i = 0; ret == 0 && i < nqueues; i++) {
        v->queues[i].kick_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        ret = v->queues[i].kick_fd < 0 ? -errno : 0;
        if (ret == 0 && !ops->external_queues)
            ret = epoll_add(v->epoll_fd, v->queues[i].kick_fd, EPOLLIN, i);
    }
    return ret;
}

void virtio_destroy(struct vmm_virtio *v)
{
    virtio_stop(v);
    for (unsigned i = 0; v->queues && i < v->nqueues; i++)
        if (v->queues[i].kick_fd >= 0)
            close(v->queues[i].kick_fd);
    free(v->queues);
    if (v->epoll_fd >= 0)
        close(v->epoll_fd);
    if (v->ctl_fd >= 0)
        close(v->ctl_fd);
    pthread_cond_destroy(&v->acked);
    pthread_mutex_destroy(&v->lock);
}

bool virtio_has_feature(const struct vmm_virtio *v, unsigned bit)
{
    return v->driver_features >> bit & 1;
}

int virtio_watch(struct vmm_virtio *v, int fd, uint32_t events, bool add)
{
    struct epoll_event ev = { .events = events, .data.u64 = TAG_FD + (uint64_t)fd };
    return epoll_ctl(v->epoll_fd, add ? EPOLL_CTL_ADD : EPOLL_CTL_MOD, fd, &ev) < 0 ? -errno : 0;
}

int virtio_unwatch(struct vmm_virtio *v, int fd)
{
    return epoll_ctl(v->epoll_fd, EPOLL_CTL_DEL, fd, NULL) < 0 ? -errno : 0;
}

void virtio_queue_signal(struct vmm_virtio *v, unsigned q)
{
    struct virtio_queue *queue = &v->queues[q];
    if (vmm_virtq_should_signal(&queue->vq))
        v->signal(v->transport, queue->live_vector);
}

void virtio_serve_queue(struct vmm_virtio *v, unsigned qi, struct vmm_virtq_chain *chain, virtio_request_fn handle)
{
    struct vmm_virtq *q = &v->queues[qi].vq;
    do {
        unsigned done = 0;
        int r;
        uint32_t written;
        while ((r = vmm_virtq_pop(q, &v->mem, chain)) > 0) {
            if (handle(v, qi, chain, &written)) {
                vmm_virtq_push(q, chain->head, written);
                done++;
            }
        }
        if (v->ops->batch_done)
            v->ops->batch_done(v);
        if (done && v->ops->completed)
            v->ops->completed(v, qi);
        else if (done)
            virtio_queue_signal(v, qi);
        if (r < 0) {
            virtio_fail(v, qi, r);
            return;
        }
    } while (vmm_virtq_rearm(q));
}

static const char *queue_error(const struct vmm_virtio *v, int error)
{
    switch (error) {
    case -EFAULT: return v->mem.iommu ? "a buffer or ring outside its IOMMU mappings" : "a buffer or ring outside guest RAM";
    case -ELOOP: return "a descriptor loop or a chain too long";
    case -EPROTO: return "a malformed chain (order, indirect table)";
    case -EINVAL: return "an index or head out of range";
    default: return "a malformed request";
    }
}

void virtio_needs_reset(struct vmm_virtio *v)
{
    v->active = false;
    pthread_mutex_lock(&v->lock);
    v->status |= VIRTIO_CONFIG_S_NEEDS_RESET;
    uint16_t vector = v->config_vector;
    pthread_mutex_unlock(&v->lock);
    v->signal(v->transport, vector);
}

void virtio_fail(struct vmm_virtio *v, unsigned q, int error)
{
    if (vmm_ratelimit_allow(&v->broken_log))
        vmm_log_warn("%s: the guest's queue %u has %s; device stopped until the guest resets it",
                     v->thread_name, q, queue_error(v, error));
    virtio_needs_reset(v);
}

/* Device thread: the driver finished setup. Rings are checked here, where
 * they are used, from the values the driver wrote before DRIVER_OK. */
static void thread_activate(struct vmm_virtio *v)
{
    bool event_idx = virtio_has_feature(v, 29);
    /* Only the first activation after a restore: a later one (after the
     * driver's reset) starts from zero, as on any device. */
    bool restored = v->restored;
    v->restored = false;
    for (unsigned i = 0; i < v->nqueues; i++) {
        struct virtio_queue *q = &v->queues[i];
        if (!q->enabled) {
            q->vq = (struct vmm_virtq){ 0 };
            continue;
        }
        int ret = vmm_virtq_init(&q->vq, &v->mem, q->size, q->desc, q->driver, q->device, event_idx);
        if (ret < 0) {
            virtio_fail(v, i, ret);
            return;
        }
        if (restored) {
            q->vq.last_avail = q->saved.last_avail;
            q->vq.used_idx = q->saved.used_idx;
            q->vq.signalled_used = q->saved.signalled_used;
            q->vq.signalled_valid = q->saved.signalled_valid;
        }
        q->live_vector = q->vector;
    }
    v->active = true;
    if (v->ops->activate)
        v->ops->activate(v);
    if (restored && v->ops->restore)
        v->ops->restore(v, v->saved_device);
    for (unsigned i = 0; i < v->nqueues && v->active; i++)
        if (v->queues[i].enabled)
            v->ops->queue_kick(v, i);
}

/* Device thread: handles requests; false when it must exit. */
static bool thread_control(struct vmm_virtio *v)
{
    uint64_t count;
    ssize_t ignored = read(v->ctl_fd, &count, sizeof(count));
    (void)ignored;
    pthread_mutex_lock(&v->lock);
    /* Held here, between two requests: the guest's queues and memory stay
     * as they are; kicks and fd readiness wait in their eventfds. */
    if (v->want_pause && !v->want_stop) {
        pthread_mutex_unlock(&v->lock);
        if (v->active && v->ops->settle)
            v->ops->settle(v);
        pthread_mutex_lock(&v->lock);
        v->paused = true;
        pthread_cond_broadcast(&v->acked);
        while (v->want_pause && !v->want_stop)
            pthread_cond_wait(&v->acked, &v->lock);
        v->paused = false;
    }
    bool stop = v->want_stop, reset = v->want_reset, activate = v->want_activate;
    v->want_activate = false;
    pthread_mutex_unlock(&v->lock);
    if (stop)
        return false;
    if (reset) {
        if (v->active && v->ops->reset)
            v->ops->reset(v);
        v->active = false;
        pthread_mutex_lock(&v->lock);
        v->want_reset = false;
        pthread_cond_broadcast(&v->acked);
        pthread_mutex_unlock(&v->lock);
    }
    if (activate && !reset)
        thread_activate(v);
    return true;
}

static void thread_run(struct vmm_virtio *v)
{
    if (v->init && v->init(v->init_opaque, 0) < 0) {
        vmm_log_warn("%s: could not confine the device thread; stopping the VM", v->thread_name);
        vmm_vm_request_stop(v->vm, VMM_STOP_VCPU_SETUP, -1, EPERM);
        return;
    }
    struct epoll_event events[8];
    for (;;) {
        int n = epoll_wait(v->epoll_fd, events, 8, -1);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return;
        }
        for (int i = 0; i < n; i++) {
            uint64_t tag = events[i].data.u64;
            if (tag == TAG_CTL) {
                if (!thread_control(v))
                    return;
            } else if (tag < v->nqueues) {
                uint64_t count;
                ssize_t ignored = read(v->queues[tag].kick_fd, &count, sizeof(count));
                (void)ignored;
                if (v->active)
                    v->ops->queue_kick(v, (unsigned)tag);
            } else if (tag >= TAG_FD && v->ops->fd_ready) {
                v->ops->fd_ready(v, (int)(tag - TAG_FD), events[i].events);
            }
        }
    }
}

static void *virtio_thread(void *arg)
{
    struct vmm_virtio *v = arg;
    pthread_setname_np(pthread_self(), v->thread_name);
    if (v->ops->batch_scheduled) {
        /* A hint: without it the thread still works, only preempts more. */
        struct sched_param none = { 0 };
        (void)sched_setscheduler(0, SCHED_BATCH, &none);
    }
    thread_run(v);
    pthread_mutex_lock(&v->lock);
    v->exited = true;
    pthread_cond_broadcast(&v->acked);
    pthread_mutex_unlock(&v->lock);
    return NULL;
}

static void ctl_post(struct vmm_virtio *v)
{
    uint64_t one = 1;
    while (write(v->ctl_fd, &one, sizeof(one)) < 0 && errno == EINTR)
        ;
}

int virtio_start(struct vmm_virtio *v, vmm_vcpu_thread_init_fn init, void *opaque)
{
    if (v->started)
        return -EBUSY;
    v->init = init;
    v->init_opaque = opaque;
    v->exited = false;
    int ret = vmm_thread_start(&v->thread, virtio_thread, v);
    if (ret == 0)
        v->started = true;
    return ret;
}

void virtio_pause(struct vmm_virtio *v)
{
    if (!v->started)
        return;
    pthread_mutex_lock(&v->lock);
    v->want_pause = true;
    ctl_post(v);
    while (!v->paused && !v->exited)
        pthread_cond_wait(&v->acked, &v->lock);
    pthread_mutex_unlock(&v->lock);
}

void virtio_resume(struct vmm_virtio *v)
{
    pthread_mutex_lock(&v->lock);
    v->want_pause = false;
    pthread_cond_broadcast(&v->acked);
    pthread_mutex_unlock(&v->lock);
}

void virtio_stop(struct vmm_virtio *v)
{
    if (!v->started)
        return;
    pthread_mutex_lock(&v->lock);
    v->want_stop = true;
    pthread_cond_broadcast(&v->acked);
    pthread_mutex_unlock(&v->lock);
    ctl_post(v);
    pthread_join(v->thread, NULL);
    v->started = false;
}

/* A reset waits until the device thread has dropped its state: the driver
 * may reuse the rings' memory as soon as it reads status 0 back. */
static void reset_device(struct vmm_virtio *v)
{
    if (v->started) {
        v->want_reset = true;
        v->want_activate = false;
        ctl_post(v);
        while (v->want_reset && !v->want_stop)
            pthread_cond_wait(&v->acked, &v->lock);
    }
    v->driver_features = 0;
    v->config_vector = VIRTIO_NO_VECTOR;
    for (unsigned i = 0; i < v->nqueues; i++) {
        struct virtio_queue *q = &v->queues[i];
        q->size = q->max_size;
        q->vector = VIRTIO_NO_VECTOR;
        q->enabled = false;
        q->desc = q->driver = q->device = 0;
    }
    v->status = 0;
}

void virtio_set_status(struct vmm_virtio *v, uint8_t status)
{
    pthread_mutex_lock(&v->lock);
    if (status == 0) {
        reset_device(v);
        pthread_mutex_unlock(&v->lock);
        return;
    }
    /* FEATURES_OK sticks only for a subset of what was offered, with VERSION_1. */
    if ((status & VIRTIO_CONFIG_S_FEATURES_OK) && !(v->status & VIRTIO_CONFIG_S_FEATURES_OK) &&
        ((v->driver_features & ~v->features) || !(v->driver_features >> VIRTIO_F_VERSION_1 & 1)))
        status &= (uint8_t)~VIRTIO_CONFIG_S_FEATURES_OK;
    bool go = (status & VIRTIO_CONFIG_S_DRIVER_OK) && !(v->status & VIRTIO_CONFIG_S_DRIVER_OK) &&
              (status & VIRTIO_CONFIG_S_FEATURES_OK);
    /* NEEDS_RESET is the device's to set; the driver cannot clear it. */
    v->status = (uint8_t)((status & ~VIRTIO_CONFIG_S_NEEDS_RESET) | (v->status & VIRTIO_CONFIG_S_NEEDS_RESET));
    if (go) {
        v->want_activate = true;
        ctl_post(v);
    }
    pthread_mutex_unlock(&v->lock);
}

void virtio_save(struct vmm_virtio *v, struct vmm_virtio_pci_state *out)
{
    pthread_mutex_lock(&v->lock);
    out->device_id = v->ops->device_id;
    out->nqueues = (uint16_t)v->nqueues;
    out->status = v->status;
    out->config_generation = v->config_generation;
    out->active = v->active;
    out->driver_features = v->driver_features;
    out->config_vector = v->config_vector;
    for (unsigned i = 0; i < v->nqueues && i < VMM_VIRTIO_STATE_MAX_QUEUES; i++) {
        const struct virtio_queue *q = &v->queues[i];
        out->queues[i] = (struct vmm_virtio_queue_state){
            .desc = q->desc, .driver = q->driver, .device = q->device, .size = q->size, .vector = q->vector,
            .enabled = q->enabled, .last_avail = q->vq.last_avail, .used_idx = q->vq.used_idx,
            .signalled_used = q->vq.signalled_used, .signalled_valid = q->vq.signalled_valid,
        };
    }
    if (v->active && v->ops->save)
        v->ops->save(v, out->device);
    pthread_mutex_unlock(&v->lock);
}

void virtio_restore(struct vmm_virtio *v, const struct vmm_virtio_pci_state *in)
{
    pthread_mutex_lock(&v->lock);
    /* What the driver may write is checked as when it writes it. */
    v->driver_features = in->driver_features & v->features;
    v->status = in->status;
    v->config_generation = in->config_generation;
    v->config_vector = in->config_vector;
    for (unsigned i = 0; i < v->nqueues; i++) {
        struct virtio_queue *q = &v->queues[i];
        const struct vmm_virtio_queue_state *s = &in->queues[i];
        bool size_ok = s->size && s->size <= q->max_size && !(s->size & (s->size - 1));
        q->size = size_ok ? s->size : q->max_size;
        q->vector = s->vector;
        q->enabled = s->enabled;
        q->desc = s->desc;
        q->driver = s->driver;
        q->device = s->device;
        q->saved = *s;
    }
    memcpy(v->saved_device, in->device, sizeof(v->saved_device));
    /* The device ran when it was saved: it runs again, from the saved
     * indices, once its thread is let go (vm.resume). One that had
     * stopped for a reset waits for the driver's, and starts anew. */
    v->restored = in->active && (v->status & VIRTIO_CONFIG_S_DRIVER_OK) && !(v->status & VIRTIO_CONFIG_S_NEEDS_RESET);
    v->want_activate = v->restored;
    v->want_pause = true;
    pthread_mutex_unlock(&v->lock);
    if (v->want_activate)
        ctl_post(v);
}
