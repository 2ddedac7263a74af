/* Private: the frontend side of the vhost-user protocol (QEMU's
 * docs/interop/vhost-user.rst) over a connected UNIX stream socket. A
 * backend (virtiofsd, qemu-storage-daemon) serves a device's queues from
 * guest RAM it maps from the descriptors sent here; kicks reach it through
 * the queues' ioeventfds and its interrupts go straight into KVM. */
#ifndef CVMM_VHOST_USER_H
#define CVMM_VHOST_USER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "vm/vmm_memory.h"

/* Protocol features the frontend takes when offered. */
enum {
    VHOST_USER_PROTOCOL_F_MQ = 0,
    VHOST_USER_PROTOCOL_F_REPLY_ACK = 3,
    VHOST_USER_PROTOCOL_F_CONFIG = 9,
    VHOST_USER_PROTOCOL_F_RESET_DEVICE = 13,
    VHOST_USER_PROTOCOL_F_CONFIGURE_MEM_SLOTS = 15,
};
#define VHOST_USER_F_PROTOCOL_FEATURES 30
#define VHOST_USER_MAX_RAM_SLOTS 8 /* the table SET_MEM_TABLE carries */
/* How long a reply may take once the handshake (5 s) is over. One serving
 * a guest can be slow to answer: virtiofsd drains its in-flight requests
 * before GET_VRING_BASE, and on a loaded host its thread waits for a CPU
 * (a nested lab's reboot saw more than 5 s). QEMU and Cloud Hypervisor
 * wait without a deadline; this one bounds what a hung backend costs. */
#define VHOST_USER_REPLY_TIMEOUT_MS 30000

struct vmm_vhost_user {
    int fd;
    /* The backend closed its socket, or a reply did not come or came
     * malformed: nothing more is asked of it (any thread reads it). */
    _Atomic bool gone;
    bool greeted; /* the handshake is over: replies get the longer deadline */
    /* Its owner and each device on it: the last to let go closes it. */
    _Atomic unsigned refs;
    /* One request and its reply at a time: the device thread (queues)
     * and the VMM thread (hot-added RAM) both talk to the backend. */
    pthread_mutex_t lock;
    uint64_t features;          /* the backend's device features */
    uint64_t protocol_features; /* the ones both sides took */
    unsigned max_queues;        /* GET_QUEUE_NUM, or 0 without MQ */
    unsigned regions_sent;      /* RAM regions of this boot the backend has */
    unsigned boots;             /* devices made on it so far */
};

/* The connection outlives each boot's device (vmm_vhost_user_connect in
 * vmm_virtio.h): a backend such as virtiofsd serves one frontend
 * connection for its whole life, reboots included. A new boot's device
 * calls this first: after an earlier boot the backend is reset, as its
 * rings' addresses are in RAM that is gone (libvhost-user would try to
 * map them again in the next table, and give up). */
int vhost_user_new_boot(struct vmm_vhost_user *u);
/* A device holds the connection while it lives. */
void vhost_user_hold(struct vmm_vhost_user *u);
void vhost_user_release(struct vmm_vhost_user *u);
bool vhost_user_has_protocol(const struct vmm_vhost_user *u, unsigned bit);

int vhost_user_set_features(struct vmm_vhost_user *u, uint64_t features);
/* `whole`: the RAM table as it is now (SET_MEM_TABLE). Otherwise the
 * regions added since (ADD_MEM_REG each with CONFIGURE_MEM_SLOTS, else the
 * table again), nothing if the backend never had a table. */
int vhost_user_send_memory(struct vmm_vhost_user *u, const struct vmm_gmem *mem, bool whole);
/* A queue handed over: size, ring addresses (the frontend's virtual
 * addresses of them), first index, kick and call eventfds, enabled. */
struct vhost_user_vring {
    unsigned index;
    uint16_t size;
    uint64_t desc, avail, used; /* host virtual addresses */
    int kick_fd, call_fd;
};
int vhost_user_start_vring(struct vmm_vhost_user *u, const struct vhost_user_vring *vring);
/* Stops a queue (GET_VRING_BASE): the backend lets go of its rings. */
int vhost_user_stop_vring(struct vmm_vhost_user *u, unsigned index);
/* The device's config space from the backend (protocol CONFIG). */
int vhost_user_get_config(struct vmm_vhost_user *u, uint32_t offset, uint8_t *data, uint32_t size);

#endif
