/* Installing seccomp filters on the VMM's threads, and reporting a
 * violation. The filters themselves are built in Swift with libseccomp;
 * the C core says which KVM ioctls each thread kind issues. */
#ifndef VMM_SECCOMP_H
#define VMM_SECCOMP_H

#include <linux/filter.h>
#include <stdint.h>

enum vmm_thread_kind {
    VMM_THREAD_VMM = 0, /* the main thread: setup, event loop, reboots */
    VMM_THREAD_VCPU,    /* a vCPU run loop */
    VMM_THREAD_VIRTIO_BLK,     /* a virtio-blk device's queues */
    VMM_THREAD_VIRTIO_CONSOLE, /* the virtio-console's queues and input */
    VMM_THREAD_VIRTIO_RNG,     /* the virtio-rng's queue */
    VMM_THREAD_VIRTIO_NET,     /* a virtio-net device's queues and taps */
    VMM_THREAD_API,            /* the HTTP API: its socket and connections */
    VMM_THREAD_VIRTIO_VSOCK,   /* the virtio-vsock's queues and host sockets */
    VMM_THREAD_VHOST_USER,     /* a vhost-user device: its backend's socket */
    VMM_THREAD_CONSOLE_SOCKET, /* a socket console's relay */
    VMM_THREAD_VIRTIO_IOMMU,   /* the virtio-iommu's requests, assigned devices' DMA mappings */
    VMM_THREAD_KINDS,
};

/* A BPF program for one thread kind. The memory stays the caller's and
 * must outlive every thread that installs it. */
struct vmm_seccomp_program {
    enum vmm_thread_kind kind;
    const struct sock_filter *filter;
    unsigned short length;
};

const char *vmm_thread_kind_name(enum vmm_thread_kind kind);

/* The KVM ioctl request numbers the core issues on a thread of `kind`. */
unsigned vmm_seccomp_ioctls(enum vmm_thread_kind kind, const unsigned long **out);

/* What the VMM thread also issues when devices can be hot-added (the API). */
unsigned vmm_seccomp_hotplug_ioctls(const unsigned long **out);

/* What the VMM thread also issues to save KVM's state (vm.snapshot, with
 * the API) or to restore it (vm.restore, --restore). */
unsigned vmm_seccomp_state_ioctls(const unsigned long **out);

/* Sets no_new_privs and installs `program` on the calling thread. */
int vmm_seccomp_install(const struct vmm_seccomp_program *program);

/* A thread init hook (vCPUs, device threads): `opaque` is the thread's program. */
int vmm_seccomp_thread_init(void *opaque, unsigned index);

/* Installs the SIGSYS handler that names the thread kind and the syscall,
 * then ends the VMM. `names[nr]` is the name of syscall nr (NULL if none);
 * the table must live for the rest of the process. */
int vmm_seccomp_trap_init(const char *const *names, unsigned count);

struct termios;
/* The terminal the SIGSYS report restores before the VMM ends (the saved
 * mode of a terminal the VMM put in raw mode), or fd -1 for none. Every
 * thread kind's filter must then allow ioctl TCSETS and TCGETS (glibc's
 * tcsetattr reads back): the handler runs on the thread that violated. */
void vmm_seccomp_trap_terminal(int fd, const struct termios *saved);

#endif
