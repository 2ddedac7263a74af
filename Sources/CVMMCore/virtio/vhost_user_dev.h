/* Private: a virtio device whose queues a vhost-user backend serves
 * (vhost_user_dev.c), and what each kind adds: virtio_fs.c, vhost_user_blk.c. */
#ifndef CVMM_VHOST_USER_DEV_H
#define CVMM_VHOST_USER_DEV_H

#include "vhost/vhost_user.h"
#include "virtio/virtio_dev.h"

#define VHOST_USER_CONFIG_MAX 256

struct vhost_user_dev {
    struct vmm_virtio v;
    struct vmm_vhost_user *backend; /* not owned: it outlives the boot */
    /* Device thread only. */
    /* The rings handed to the backend, by queue: a bit each, so they can
     * be taken back after the core has freed its queues (device destroy). */
    uint64_t started;
    /* The call eventfd of a queue with no MSI-X vector: backends
     * (libvhost-user) signal every queue, and nothing reads this one. */
    int idle_call_fd;
    /* The device-specific config space the guest reads (read-only). */
    uint8_t config[VHOST_USER_CONFIG_MAX];
    uint32_t config_size;
};

/* A device on `backend` with its queues; it offers the guest what the
 * backend offers of `supported`. */
int vhost_user_dev_create(struct vmm_vm *vm, const struct virtio_device_ops *ops, size_t object_size,
                          struct vmm_vhost_user *backend,
                          uint64_t supported, unsigned nqueues, uint16_t queue_size, const char *thread_name,
                          struct vhost_user_dev **out);

/* A vhost-user device kind's ops: all but its ids are the shared ones. */
#define VHOST_USER_DEV_OPS(id, class)                                                   \
    {                                                                                   \
        .device_id = (id), .pci_class = (class), .external_queues = true,               \
        .unsaveable = true, /* the backend holds the queues */                          \
        .config_access = vhost_user_dev_config, .activate = vhost_user_dev_activate,    \
        .queue_kick = vhost_user_dev_kick, .fd_ready = vhost_user_dev_fd_ready,         \
        .reset = vhost_user_dev_reset, .destroy = vhost_user_dev_destroy,               \
    }

/* The ops every vhost-user device shares. */
void vhost_user_dev_config(struct vmm_virtio *v, uint32_t offset, uint8_t *data, uint32_t size, bool is_write);
void vhost_user_dev_activate(struct vmm_virtio *v);
void vhost_user_dev_kick(struct vmm_virtio *v, unsigned q);
void vhost_user_dev_fd_ready(struct vmm_virtio *v, int fd, uint32_t events);
void vhost_user_dev_reset(struct vmm_virtio *v);
void vhost_user_dev_destroy(struct vmm_virtio *v);

#endif
