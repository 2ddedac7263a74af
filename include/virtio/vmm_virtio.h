/* Virtio devices behind the modern virtio-pci transport (virtio 1.2 §4.1).
 *
 * A device (virtio_blk.c, virtio_console.c, virtio_rng.c) knows its queues
 * and config, not the transport; the transport (virtio_pci.c) knows BARs,
 * capabilities and MSI-X, not the device. Each device processes its queues
 * on its own named thread, woken by the queues' ioeventfds (no exit on the
 * vCPU for a kick); interrupts are MSI-X irqfds. */
#ifndef VMM_VIRTIO_H
#define VMM_VIRTIO_H

#include <stdbool.h>
#include <stdint.h>

#include "vm/vmm_vcpu.h"

struct vmm_vm;
struct vmm_pci_dev;
struct vmm_virtio;
struct vmm_virtio_pci;

/* virtio-blk (`--disk`): `fd` is the opened, locked image; the device does
 * not own it. `serial` is what GET_ID returns (at most 20 bytes used). */
struct vmm_virtio_blk_config {
    int fd;
    uint64_t size_bytes;
    bool readonly;
    uint16_t num_queues;
    uint16_t queue_size;
    const char *serial;
    const char *thread_name; /* "virtio-blk0"... (at most 15 characters) */
};
int vmm_virtio_blk_create(struct vmm_vm *vm, const struct vmm_virtio_blk_config *config,
                          struct vmm_virtio **out);

/* Whether the disk's requests go through io_uring (false: one at a time). */
bool vmm_virtio_blk_is_async(const struct vmm_virtio *device);
/* vm.counters, as Cloud Hypervisor names them: read_bytes, read_ops,
 * write_bytes, write_ops (completed requests). Any thread. */
void vmm_virtio_blk_counters(struct vmm_virtio *device, uint64_t out[4]);

/* virtio-rng (`--rng`): reads entropy from `source_fd` (not owned). */
int vmm_virtio_rng_create(struct vmm_vm *vm, int source_fd, struct vmm_virtio **out);

/* virtio-console (`--console`): guest output to `out_fd` (-1 discards),
 * input from `in_fd` (-1 for none). Neither is owned. */
int vmm_virtio_console_create(struct vmm_vm *vm, int in_fd, int out_fd, struct vmm_virtio **out);

/* virtio-net (`--net`): one tap fd per queue pair (not owned; opened with
 * vmm_tap.h). `mtu` is what the guest is told (VIRTIO_NET_F_MTU); the
 * offload switches say which checksum/segmentation features are offered. */
#define VMM_VIRTIO_NET_MAX_PAIRS 16
struct vmm_virtio_net_config {
    const int *tap_fds;
    uint16_t queue_pairs;
    uint16_t queue_size;
    uint8_t mac[6];
    uint16_t mtu;
    bool offload_csum, offload_tso, offload_ufo;
    const char *thread_name; /* "virtio-net0"... */
};
int vmm_virtio_net_create(struct vmm_vm *vm, const struct vmm_virtio_net_config *config, struct vmm_virtio **out);
/* vm.counters: rx_bytes, rx_frames, tx_bytes, tx_frames (header included). Any thread. */
void vmm_virtio_net_counters(struct vmm_virtio *device, uint64_t out[4]);

/* virtio-vsock (`--vsock`), Cloud Hypervisor's hybrid vsock: host clients
 * connect to `listen_fd` (a listening UNIX stream socket, not owned) and
 * write "CONNECT <port>\n"; guest connections to host port P go to the
 * socket "<socket_path>_P". `guest_cid` is at least 3. */
struct vmm_virtio_vsock_config {
    uint64_t guest_cid;
    int listen_fd;
    const char *socket_path;
    const char *thread_name;
};
int vmm_virtio_vsock_create(struct vmm_vm *vm, const struct vmm_virtio_vsock_config *config,
                            struct vmm_virtio **out);

/* A vhost-user backend's connection: `fd` is a connected UNIX socket,
 * owned from the call on (closed on failure too). The handshake (features,
 * protocol features, SET_OWNER) happens here; a backend that does not
 * answer within 5 s is -ETIMEDOUT, a legacy-only one -EPROTONOSUPPORT.
 * It outlives each boot's device: backends serve one connection. Closing
 * it lets go of the owner's hold; devices on it hold it until they go. */
struct vmm_vhost_user;
int vmm_vhost_user_connect(int fd, struct vmm_vhost_user **out);
void vmm_vhost_user_close(struct vmm_vhost_user *backend);
/* The queues the backend serves at most (0: it does not say). */
unsigned vmm_vhost_user_max_queues(const struct vmm_vhost_user *backend);

/* virtio-fs (`--fs`) on a vhost-user backend (virtiofsd), which the
 * device does not own. One high-priority queue and `request_queues` more,
 * each of `queue_size`. Needs shared RAM (`--memory shared=on`). */
struct vmm_virtio_fs_config {
    struct vmm_vhost_user *backend;
    const char *tag; /* at most 36 bytes */
    uint16_t request_queues;
    uint16_t queue_size;
    const char *thread_name;
};
int vmm_virtio_fs_create(struct vmm_vm *vm, const struct vmm_virtio_fs_config *config, struct vmm_virtio **out);

/* A virtio-blk on a vhost-user backend (`--disk vhost_user=on,socket=`,
 * qemu-storage-daemon): its config space is the backend's (-ENOTSUP if
 * it does not give it). Needs shared RAM. */
struct vmm_vhost_user_blk_config {
    struct vmm_vhost_user *backend;
    uint16_t num_queues;
    uint16_t queue_size;
    const char *thread_name;
};
int vmm_vhost_user_blk_create(struct vmm_vm *vm, const struct vmm_vhost_user_blk_config *config,
                              struct vmm_virtio **out);

/* Hot-added RAM reaches a vhost-user device's backend (VMM thread, after
 * the region is added); 0 for any other device. */
int vmm_vhost_user_sync_memory(struct vmm_virtio *device);

/* Snapshot: a virtio-pci function whole: its config space, MSI-X table
 * and pending bits, the transport's registers, the device's negotiated
 * features, status and queues (with the indices the device had reached),
 * and what the device kind keeps of its own (`device`). Taken from a
 * paused VM, whose device threads finished or gave back what they had
 * in flight first. The version covers all of it. */
#define VMM_VIRTIO_STATE_VERSION 1
#define VMM_VIRTIO_STATE_MAX_QUEUES 64
#define VMM_VIRTIO_STATE_DEVICE_BYTES 64
struct vmm_virtio_queue_state {
    uint64_t desc, driver, device;
    uint16_t size, vector, last_avail, used_idx, signalled_used;
    uint8_t enabled, signalled_valid;
    uint32_t reserved;
};
struct vmm_virtio_pci_state {
    uint16_t device_id, nqueues;
    uint8_t status, config_generation, isr, active;
    uint64_t driver_features;
    uint32_t device_feature_select, driver_feature_select;
    uint16_t queue_select, config_vector;
    uint32_t reserved;
    uint8_t config[4096];
    uint32_t msix_table[(VMM_VIRTIO_STATE_MAX_QUEUES + 1) * 4];
    uint64_t msix_pba[2];
    struct vmm_virtio_queue_state queues[VMM_VIRTIO_STATE_MAX_QUEUES];
    uint8_t device[VMM_VIRTIO_STATE_DEVICE_BYTES];
};
/* Call with the VM paused. -E2BIG: more queues than a state holds;
 * -ENOTSUP: a device kind whose state cannot be saved (vhost-user, vsock). */
int vmm_virtio_pci_save(struct vmm_virtio_pci *t, struct vmm_virtio_pci_state *out);
/* Before the device thread starts: the function as saved, its device
 * running again from the saved indices once the thread is resumed.
 * -ENODEV: the state is another kind of device or queue count. */
int vmm_virtio_pci_restore(struct vmm_virtio_pci *t, const struct vmm_virtio_pci_state *state);

/* Wraps `device` (now owned by the transport) in a PCI function with one
 * 64-bit memory BAR (BAR 0) holding the virtio structures and MSI-X. */
int vmm_virtio_pci_create(struct vmm_vm *vm, struct vmm_virtio *device, struct vmm_virtio_pci **out);
struct vmm_pci_dev *vmm_virtio_pci_function(struct vmm_virtio_pci *t);
/* Starts the device thread; it calls `init` (seccomp) before anything else. */
int vmm_virtio_pci_start(struct vmm_virtio_pci *t, vmm_vcpu_thread_init_fn init, void *opaque);
/* Stops and joins the device thread. Call once the vCPUs are joined. */
void vmm_virtio_pci_stop(struct vmm_virtio_pci *t);
/* vm.pause: holds the device thread between two requests, so it reads and
 * writes nothing of the guest's; call once the vCPUs are parked. Returns
 * once it holds. Resume before the vCPUs run again. */
void vmm_virtio_pci_pause(struct vmm_virtio_pci *t);
void vmm_virtio_pci_resume(struct vmm_virtio_pci *t);
/* Unmaps everything and frees the transport and its device. */
void vmm_virtio_pci_destroy(struct vmm_virtio_pci *t);
/* The device's status byte as the guest last set it (for tests). */
uint8_t vmm_virtio_pci_status(struct vmm_virtio_pci *t);

#endif
