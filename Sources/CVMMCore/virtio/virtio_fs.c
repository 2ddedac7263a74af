/* virtio-fs (virtio 1.2 §5.11) over vhost-user: a FUSE server such as
 * virtiofsd serves the queues; this VMM gives the device its config (the
 * tag the guest mounts, the number of request queues). */
#include <errno.h>
#include <linux/virtio_fs.h>
#include <linux/virtio_ids.h>
#include <string.h>

#include "virtio/vhost_user_dev.h"

/* PCI class: mass storage, other. */
static const struct virtio_device_ops fs_ops = VHOST_USER_DEV_OPS(VIRTIO_ID_FS, 0x018000);

int vmm_virtio_fs_create(struct vmm_vm *vm, const struct vmm_virtio_fs_config *config, struct vmm_virtio **out)
{
    struct virtio_fs_config fs = { .num_request_queues = config->request_queues };
    size_t tag = config->tag ? strlen(config->tag) : 0;
    if (tag == 0 || tag > sizeof(fs.tag) || config->request_queues == 0 || !config->backend)
        return -EINVAL;
    memcpy(fs.tag, config->tag, tag);
    /* No notification queue (VIRTIO_FS_F_NOTIFICATION): nothing device-specific. */
    uint64_t supported = 1ull << VIRTIO_F_VERSION_1 | 1ull << 28 /* INDIRECT_DESC */ | 1ull << 29 /* EVENT_IDX */;
    struct vhost_user_dev *d;
    int r = vhost_user_dev_create(vm, &fs_ops, sizeof(*d), config->backend, supported, 1u + config->request_queues,
                                  config->queue_size, config->thread_name, &d);
    if (r < 0)
        return r;
    memcpy(d->config, &fs, sizeof(fs));
    d->config_size = sizeof(fs);
    *out = &d->v;
    return 0;
}
