/* virtio-blk (virtio 1.2 §5.2) over vhost-user: a block backend such as
 * qemu-storage-daemon serves the queues; its config space (capacity,
 * block size, limits) comes from the backend (GET_CONFIG), with the queue
 * count this VMM gives the device. */
#include <errno.h>
#include <linux/virtio_blk.h>
#include <linux/virtio_ids.h>
#include <string.h>

#include "virtio/vhost_user_dev.h"

/* struct virtio_blk_config through its write-zeroes fields: newer headers
 * append zoned and secure-erase fields no feature here offers, and older
 * backends refuse a longer read. */
#define BLK_CONFIG_SIZE 60
#define NUM_QUEUES_OFFSET 34

/* What a block device may offer the guest through this frontend. */
#define BLK_FEATURES ((1ull << VIRTIO_BLK_F_SIZE_MAX) | (1ull << VIRTIO_BLK_F_SEG_MAX) | (1ull << VIRTIO_BLK_F_GEOMETRY) | \
                      (1ull << VIRTIO_BLK_F_RO) | (1ull << VIRTIO_BLK_F_BLK_SIZE) | (1ull << VIRTIO_BLK_F_FLUSH) | \
                      (1ull << VIRTIO_BLK_F_TOPOLOGY) | (1ull << VIRTIO_BLK_F_CONFIG_WCE) | (1ull << VIRTIO_BLK_F_MQ) | \
                      (1ull << VIRTIO_BLK_F_DISCARD) | (1ull << VIRTIO_BLK_F_WRITE_ZEROES))

/* PCI class: mass storage, other. */
static const struct virtio_device_ops blk_ops = VHOST_USER_DEV_OPS(VIRTIO_ID_BLOCK, 0x018000);

int vmm_vhost_user_blk_create(struct vmm_vm *vm, const struct vmm_vhost_user_blk_config *config, struct vmm_virtio **out)
{
    if (!config->backend || config->num_queues == 0)
        return -EINVAL;
    uint8_t space[BLK_CONFIG_SIZE];
    int r = vhost_user_get_config(config->backend, 0, space, sizeof(space));
    if (r < 0)
        return r;
    uint64_t supported = BLK_FEATURES | 1ull << VIRTIO_F_VERSION_1 | 1ull << 28 /* INDIRECT_DESC */ |
                         1ull << 29 /* EVENT_IDX */;
    struct vhost_user_dev *d;
    r = vhost_user_dev_create(vm, &blk_ops, sizeof(*d), config->backend, supported, config->num_queues,
                              config->queue_size, config->thread_name, &d);
    if (r < 0)
        return r;
    space[NUM_QUEUES_OFFSET] = (uint8_t)config->num_queues;
    space[NUM_QUEUES_OFFSET + 1] = (uint8_t)(config->num_queues >> 8);
    memcpy(d->config, space, sizeof(space));
    d->config_size = sizeof(space);
    *out = &d->v;
    return 0;
}
