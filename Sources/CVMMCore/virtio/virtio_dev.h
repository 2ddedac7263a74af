/* Private: the transport-independent core every virtio device embeds, and
 * the hooks between it, the device and the transport. */
#ifndef CVMM_VIRTIO_DEV_H
#define CVMM_VIRTIO_DEV_H

#include <linux/virtio_config.h>
#include <pthread.h>

#include "common/vmm_log.h"
#include "vm/vmm_memory.h"
#include "virtio/vmm_virtio.h"
#include "virtio/vmm_virtq.h"

#define VIRTIO_NO_VECTOR 0xffff

struct virtio_queue {
    uint16_t max_size;
    /* Programmed by the driver through the transport (lock held). */
    uint16_t size, vector;
    bool enabled;
    uint64_t desc, driver, device;
    int kick_fd; /* eventfd the transport signals (ioeventfd or notify handler) */
    /* Device thread only, while active. */
    struct vmm_virtq vq;
    uint16_t live_vector;
    /* A restore (`restored` of the device): the indices its activation starts from. */
    struct vmm_virtio_queue_state saved;
};

struct vmm_virtio;

/* What a device implements. `dev` is its own object. All but
 * config_access run on the device thread. */
struct virtio_device_ops {
    uint16_t device_id;
    uint32_t pci_class;
    /* Another process serves the queues (vhost-user): kicks are not the
     * device thread's to read, and interrupts come from outside. */
    bool external_queues;
    /* Device-specific config space; any thread (guest config accesses). */
    void (*config_access)(struct vmm_virtio *v, uint32_t offset, uint8_t *data, uint32_t size, bool is_write);
    /* The driver set DRIVER_OK and every enabled queue checked out. */
    void (*activate)(struct vmm_virtio *v);
    /* Queue `q` was kicked (or may have work after activation). */
    void (*queue_kick)(struct vmm_virtio *v, unsigned q);
    /* A device fd registered with virtio_watch became ready. */
    void (*fd_ready)(struct vmm_virtio *v, int fd, uint32_t events);
    /* After each batch of requests virtio_serve_queue took (may be NULL). */
    void (*batch_done)(struct vmm_virtio *v);
    /* Requests of queue `q` were answered: the kind raises the interrupt
     * when it chooses, with virtio_queue_signal (NULL: at once). */
    void (*completed)(struct vmm_virtio *v, unsigned q);
    /* Before the thread holds for a pause: finish what is in flight, or
     * give back to the ring what was taken and not used, so the queues'
     * indices are the device's whole state (may be NULL). */
    void (*settle)(struct vmm_virtio *v);
    /* Snapshot of what the kind keeps beyond its queues, in at most
     * VMM_VIRTIO_STATE_DEVICE_BYTES (may be NULL: nothing). `restore`
     * runs on the device thread right after a restored activation. */
    void (*save)(struct vmm_virtio *v, uint8_t *state);
    void (*restore)(struct vmm_virtio *v, const uint8_t *state);
    /* The thread is SCHED_BATCH: its wakeups do not preempt the thread
     * running on their CPU (a vCPU, most often), which keeps its CPU until
     * it waits or the tick says; an idle CPU still takes the thread at
     * once. Where vCPUs and the thread share a CPU, a guest then queues
     * many requests for one wakeup instead of one each. */
    bool batch_scheduled;
    /* The kind's state lives outside this process: no snapshot. */
    bool unsaveable;
    /* Drop every in-flight state: the driver reset the device. */
    void (*reset)(struct vmm_virtio *v);
    /* Free the device's own resources (the core frees the rest). */
    void (*destroy)(struct vmm_virtio *v);
};

struct vmm_virtio {
    const struct virtio_device_ops *ops;
    struct vmm_vm *vm;
    struct vmm_gmem mem;
    char thread_name[16];

    pthread_mutex_t lock;
    pthread_cond_t acked;
    uint64_t features;        /* offered */
    uint64_t driver_features; /* accepted by the driver */
    uint8_t status;
    uint8_t config_generation;
    uint16_t config_vector;
    unsigned nqueues;
    struct virtio_queue *queues;

    /* The transport's interrupt: raise `vector` (VIRTIO_NO_VECTOR: none). */
    void (*signal)(void *transport, uint16_t vector);
    /* The eventfd whose write raises `vector`, for a backend; -1 for none. */
    int (*vector_eventfd)(void *transport, uint16_t vector);
    void *transport;

    /* The device thread and its requests (under lock). */
    pthread_t thread;
    bool started;
    int epoll_fd, ctl_fd;
    bool want_activate, want_reset, want_stop;
    /* vm.pause: the thread holds between two requests (`paused`) while
     * `want_pause`; `exited` once it has returned, whatever the reason. */
    bool want_pause, paused, exited;
    bool active; /* device thread only */
    /* A restore: the next activation starts each queue from its `saved`
     * indices and gives the kind its own state (`restore`). */
    bool restored;
    uint8_t saved_device[VMM_VIRTIO_STATE_DEVICE_BYTES];
    vmm_vcpu_thread_init_fn init;
    void *init_opaque;
    struct vmm_ratelimit broken_log;
};

/* virtio.c: for devices. */
int virtio_init(struct vmm_virtio *v, struct vmm_vm *vm, const struct virtio_device_ops *ops,
                const char *thread_name, uint64_t device_features, unsigned nqueues, uint16_t queue_size);
void virtio_destroy(struct vmm_virtio *v);
/* VMM thread: holds the device thread until virtio_resume, once the vCPUs
 * are parked (a vCPU may be waiting on this thread for a reset). Returns
 * when it holds, or has exited. */
void virtio_pause(struct vmm_virtio *v);
void virtio_resume(struct vmm_virtio *v);
bool virtio_has_feature(const struct vmm_virtio *v, unsigned bit);
/* Interrupt for queue `q` if the driver wants one (event idx). */
void virtio_queue_signal(struct vmm_virtio *v, unsigned q);
/* A malformed queue: DEVICE_NEEDS_RESET, a config interrupt, one log line
 * (rate-limited); the device stops until the driver resets it. */
void virtio_fail(struct vmm_virtio *v, unsigned q, int error);
/* DEVICE_NEEDS_RESET and a config interrupt: the device stops until the
 * driver resets it (the caller says why). */
void virtio_needs_reset(struct vmm_virtio *v);
/* Handles one request: true and the bytes put in the chain when it is
 * answered now, false when the device answers it later itself. */
typedef bool (*virtio_request_fn)(struct vmm_virtio *v, unsigned q, const struct vmm_virtq_chain *chain,
                                  uint32_t *written);
/* Serves queue `q` until the driver has nothing more: each chain to
 * `handle`, answered ones back with one interrupt per batch (or as the
 * kind's `completed` chooses), and a
 * malformed queue to virtio_fail. `chain` is the device's scratch space. */
void virtio_serve_queue(struct vmm_virtio *v, unsigned q, struct vmm_virtq_chain *chain, virtio_request_fn handle);
/* Adds/changes a device fd on the thread's epoll set (events 0: paused). */
int virtio_watch(struct vmm_virtio *v, int fd, uint32_t events, bool add);
int virtio_unwatch(struct vmm_virtio *v, int fd);

/* virtio.c: snapshot of the core's part, the VM paused (save) or the
 * thread not started (restore). */
void virtio_save(struct vmm_virtio *v, struct vmm_virtio_pci_state *out);
void virtio_restore(struct vmm_virtio *v, const struct vmm_virtio_pci_state *state);

/* virtio.c: for the transport (vCPU threads). */
void virtio_set_status(struct vmm_virtio *v, uint8_t status);
int virtio_start(struct vmm_virtio *v, vmm_vcpu_thread_init_fn init, void *opaque);
void virtio_stop(struct vmm_virtio *v);

#endif
