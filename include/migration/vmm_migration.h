/* Live migration's stream between two of these VMMs: framed messages on a
 * connected socket (UNIX or TCP). Every message is a header, then
 * `length` bytes:
 *   START     the source's configuration (vm.info's JSON); answered
 *   MEMORY    guest pages: runs of {u64 gpa, u64 len, len bytes}
 *   STATE     the VM's and devices' state (a snapshot's state file); answered
 *   COMPLETE  the destination takes the disks and runs; answered
 *   REPLY     u32 status (0: done), then a message for the source's user
 * Integers are little-endian (both ends are x86-64). */
#ifndef VMM_MIGRATION_H
#define VMM_MIGRATION_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

struct vmm_vm;

#define VMM_MIG_MAGIC 0x474d4d56u /* "VMMG" */

enum vmm_mig_kind {
    VMM_MIG_START = 1,
    VMM_MIG_MEMORY = 2,
    VMM_MIG_STATE = 3,
    VMM_MIG_COMPLETE = 4,
    VMM_MIG_REPLY = 5,
};

struct vmm_mig_header {
    uint32_t magic;
    uint32_t kind;
    uint64_t length;
};

/* Bounds every wait on the peer. Each transfer waits for the socket and
 * the `abort` descriptors together: one readable (the guest stopped, a
 * stop signal) ends it with -ECANCELED; past `deadline_ms`
 * (CLOCK_MONOTONIC, 0: none) or `idle_ms` without progress, -ETIMEDOUT. */
struct vmm_mig_channel {
    int fd;
    int abort[2]; /* -1: unused */
    int64_t deadline_ms;
    int idle_ms;
};

int64_t vmm_mig_now_ms(void);
/* The whole buffer, or a negative errno (-EPIPE: the peer went away). */
int vmm_mig_write(const struct vmm_mig_channel *ch, const void *buf, size_t len);
int vmm_mig_read(const struct vmm_mig_channel *ch, void *buf, size_t len);
int vmm_mig_writev(const struct vmm_mig_channel *ch, struct iovec *iov, int count);
/* One message's header; -EPROTO if it is not one of ours. */
int vmm_mig_read_header(const struct vmm_mig_channel *ch, struct vmm_mig_header *out);
int vmm_mig_write_message(const struct vmm_mig_channel *ch, uint32_t kind, const void *payload, uint64_t length);
/* Descriptors beside one byte (SCM_RIGHTS, UNIX sockets): at most 16. */
int vmm_mig_send_fds(const struct vmm_mig_channel *ch, const int *fds, unsigned count);
/* The count received (each close-on-exec), or a negative errno. */
int vmm_mig_receive_fds(const struct vmm_mig_channel *ch, int *fds, unsigned max);

/* Sends RAM region `index` as MEMORY messages: the pages whose bits are
 * set in `bitmap` (vmm_dirty.h), or, with NULL, every page that is not all
 * zeros (the destination's RAM starts zeroed). Returns the page bytes
 * sent, or a negative errno. VMM thread; the guest may run meanwhile. */
int64_t vmm_mig_send_ram(const struct vmm_vm *vm, const struct vmm_mig_channel *ch, unsigned index,
                         const uint64_t *bitmap);
/* Reads one MEMORY message of `length` bytes straight into RAM; -EPROTO
 * for a run outside RAM or past the message. Before the vCPUs start. */
int vmm_mig_receive_ram(const struct vmm_vm *vm, const struct vmm_mig_channel *ch, uint64_t length);

#endif
