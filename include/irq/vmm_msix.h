/* MSI-X for an emulated PCI function: the capability, the vector table
 * and pending-bit array inside one of its BARs, and one KVM GSI route plus
 * irqfd per vector, so that signalling a vector is one eventfd write from
 * the device's thread. Masked vectors (per vector or the function mask)
 * collect pending bits and fire when unmasked. */
#ifndef VMM_MSIX_H
#define VMM_MSIX_H

#include <stdbool.h>
#include <stdint.h>

struct vmm_vm;
struct vmm_pci_dev;
struct vmm_msix;

#define VMM_MSIX_MAX_VECTORS 2048
#define VMM_MSIX_ENTRY_SIZE 16
#define VMM_MSIX_NO_VECTOR 0xffff

/* Adds the capability to `dev` (table at `table_offset` and PBA at
 * `pba_offset` of BAR `bar`, both 8-byte aligned) and creates a GSI and
 * irqfd per vector. */
int vmm_msix_create(struct vmm_vm *vm, struct vmm_pci_dev *dev, unsigned vectors, unsigned bar,
                    uint32_t table_offset, uint32_t pba_offset, struct vmm_msix **out);
void vmm_msix_destroy(struct vmm_msix *msix);

/* Called with the function's lock held when the guest sets or clears the
 * MSI-X enable bit. */
typedef void (*vmm_msix_enable_fn)(void *opaque, bool enabled);

/* An assigned device's own MSI-X capability at config offset `cap`: its
 * vectors' eventfds are signalled by VFIO, not by vmm_msix_signal. A
 * masked vector's eventfd is detached from KVM, so what the device raises
 * meanwhile counts up in it and is injected when the guest unmasks. The
 * owner forwards table accesses and config writes as for an emulated one. */
int vmm_msix_attach(struct vmm_vm *vm, struct vmm_pci_dev *dev, uint8_t cap, unsigned vectors,
                    vmm_msix_enable_fn enable, void *opaque, struct vmm_msix **out);

/* The owner's BAR handler forwards accesses to the table and the PBA,
 * with offsets relative to their start. */
void vmm_msix_table_io(struct vmm_msix *msix, uint64_t offset, uint8_t *data, uint32_t size,
                       bool is_write);
void vmm_msix_pba_io(struct vmm_msix *msix, uint64_t offset, uint8_t *data, uint32_t size,
                     bool is_write);
/* The owner's config_written hook forwards every write (enable and
 * function-mask bits live in the capability). */
void vmm_msix_config_written(struct vmm_msix *msix, uint32_t offset, uint32_t size);

/* The vectors' eventfds are written from outside the VMM too (a
 * vhost-user backend): from now on each is attached to KVM only while its
 * vector is unmasked, and what it counted meanwhile arrives on unmasking. */
int vmm_msix_hand_out(struct vmm_msix *msix);
/* Raises `vector`: an eventfd write, or a pending bit while masked.
 * -EINVAL for a vector the function does not have. */
int vmm_msix_signal(struct vmm_msix *msix, unsigned vector);
bool vmm_msix_enabled(struct vmm_msix *msix);
/* Snapshot: the vector table (four words a vector) and pending bits of
 * the first `count` vectors (-EINVAL if the function has another count).
 * Restore before the config space, whose enable and mask bits then
 * route and fire them. */
int vmm_msix_save(struct vmm_msix *msix, uint32_t *table, uint64_t *pba, unsigned count);
int vmm_msix_restore(struct vmm_msix *msix, const uint32_t *table, const uint64_t *pba, unsigned count);
unsigned vmm_msix_vector_count(const struct vmm_msix *msix);
/* The eventfd behind `vector` (for a device that signals from elsewhere). */
int vmm_msix_eventfd(const struct vmm_msix *msix, unsigned vector);

#endif
