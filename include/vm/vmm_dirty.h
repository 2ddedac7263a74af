/* Which guest pages changed, for live migration's iterative copy: KVM's
 * dirty log (KVM_MEM_LOG_DIRTY_PAGES) for what the vCPUs write, and the
 * VMM's own log for what its device threads write into guest RAM (virtio
 * used rings and the buffers they return), which KVM never sees. One bit
 * per 4 KiB page of each RAM region, bit i of word i / 64. */
#ifndef VMM_DIRTY_H
#define VMM_DIRTY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct vmm_vm;
struct vmm_gmem;

/* Words of a bitmap covering a region of `size` bytes. */
size_t vmm_dirty_bitmap_words(uint64_t size);

/* Turns logging on for every RAM region, both logs empty. The devices'
 * bitmaps are allocated at the first start and kept for the VM's life (a
 * 32768th of RAM), so a device thread never meets a freed one. VMM
 * thread; undone whole if a slot refuses. */
int vmm_dirty_log_start(struct vmm_vm *vm);
/* Adds region `index`'s pages written since the start or the last take
 * to `bitmap` (vmm_dirty_bitmap_words of its size: pages set there and not
 * sent yet stay set), both logs cleared. VMM thread, while logging. */
int vmm_dirty_log_take(struct vmm_vm *vm, unsigned index, uint64_t *bitmap);
/* Logging off: KVM maps the guest with huge pages again. */
void vmm_dirty_log_stop(struct vmm_vm *vm);

/* Device threads: [gpa, gpa+len) was written by the VMM. Nothing unless
 * `mem` is a VM's view and logging is on. */
void vmm_gmem_mark_dirty(const struct vmm_gmem *mem, uint64_t gpa, uint64_t len);
/* Whether marks are taken now: callers skip finding what to mark. */
bool vmm_gmem_logging(const struct vmm_gmem *mem);

#endif
