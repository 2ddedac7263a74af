/* An address bus (port I/O or MMIO): devices claim ranges with a handler.
 *
 * Readers (vCPU threads) look up ranges without taking a lock: every change
 * publishes a new sorted table with one atomic store, and frees the one it
 * replaced once no lookup holds it (so a bus costs the same after a million
 * changes). Ranges can be added, moved (a reprogrammed BAR) and removed
 * while vCPUs run, also from within a handler. */
#ifndef VMM_BUS_H
#define VMM_BUS_H

#include <stdbool.h>
#include <stdint.h>

struct vmm_bus;

/* Called on the vCPU thread that made the access. `offset` is relative to
 * the base the range was registered at, so a moved range needs no device
 * change. For a read the handler fills `size` bytes of `data`. */
typedef void (*vmm_io_fn)(void *opaque, uint64_t offset, uint8_t *data,
                          uint32_t size, bool is_write);

int vmm_bus_create(struct vmm_bus **out);
void vmm_bus_destroy(struct vmm_bus *bus);

/* -EINVAL for an empty or wrapping range, -EEXIST if it overlaps another. */
int vmm_bus_register(struct vmm_bus *bus, uint64_t base, uint64_t len,
                     vmm_io_fn fn, void *opaque);
/* -ENOENT if no range starts at `base`. */
int vmm_bus_unregister(struct vmm_bus *bus, uint64_t base);
/* Moves the range at `old_base` in one step; -EEXIST if the new place overlaps. */
int vmm_bus_move(struct vmm_bus *bus, uint64_t old_base, uint64_t new_base);

/* Returns false when no single range holds the whole access: a read then
 * gets all-ones and a write is dropped, as on real hardware. */
bool vmm_bus_dispatch(struct vmm_bus *bus, uint64_t addr, uint8_t *data,
                      uint32_t size, bool is_write);

/* Number of ranges currently registered. */
unsigned vmm_bus_count(struct vmm_bus *bus);

#endif
