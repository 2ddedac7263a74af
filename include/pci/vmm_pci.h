/* PCI functions and the bus they sit on (segment 0, bus 0).
 *
 * A function's configuration space is data plus masks: `wmask` says which
 * bits a guest write may change, `w1c` which bits a write of 1 clears. BAR
 * sizing, the command register and capabilities all follow that one rule;
 * a function kind (virtio, VFIO) adds hooks only for what it must see.
 *
 * Config accesses arrive on the vCPU thread that made them (ports
 * 0xcf8/0xcfc or ECAM); a BAR the guest moves, or whose decode it turns
 * on or off, is moved on the buses right there. */
#ifndef VMM_PCI_H
#define VMM_PCI_H

#include <stdbool.h>
#include <stdint.h>

#include "vm/vmm_bus.h"

struct vmm_pci_dev;
struct vmm_pci_bus;

/* Where functions claim their BARs and a bus its config windows: a VM's
 * port and memory buses (vmm_vm_pio_bus, vmm_vm_mmio_bus), or a test's
 * own — config space, BARs and their moves need no KVM. */
struct vmm_pci_space {
    struct vmm_bus *pio;
    struct vmm_bus *mmio;
};

#define VMM_PCI_CFG_SIZE 4096
#define VMM_PCI_SLOTS 32
#define VMM_PCI_BARS 6
#define VMM_PCI_CONF1_PORT 0xcf8
/* One bus's ECAM window: 32 devices x 8 functions x 4 KiB. */
#define VMM_PCI_ECAM_SIZE (1u << 20)

enum vmm_pci_bar_kind {
    VMM_PCI_BAR_NONE = 0,
    VMM_PCI_BAR_IO,
    VMM_PCI_BAR_MEM32,
    VMM_PCI_BAR_MEM64, /* takes this BAR and the next */
};

/* What a function kind hooks. Every hook runs with the function's lock
 * held, on the thread of the access; any may be NULL. */
struct vmm_pci_ops {
    /* After a guest write was applied to the config bytes [offset, offset+size). */
    void (*config_written)(void *opaque, uint32_t offset, uint32_t size);
    /* A BAR now decodes at `address` (`on`) or no longer does. */
    void (*bar_mapped)(void *opaque, unsigned bar, uint64_t address, bool on);
    /* An assigned device's own config space, for the bytes marked
     * passthrough: fill `data` from [offset, offset+size), or write it. */
    void (*device_read)(void *opaque, uint32_t offset, uint8_t *data, uint32_t size);
    void (*device_write)(void *opaque, uint32_t offset, const uint8_t *data, uint32_t size);
};

/* Allocates a type-0 function with the given identity; its BARs and
 * capabilities are added before it goes on the bus. */
int vmm_pci_dev_create(const struct vmm_pci_space *space, uint16_t vendor, uint16_t device, uint32_t class_code,
                       uint8_t revision, uint16_t subsys_vendor, uint16_t subsys_id,
                       const struct vmm_pci_ops *ops, void *opaque, struct vmm_pci_dev **out);
void vmm_pci_dev_destroy(struct vmm_pci_dev *dev);

/* Declares BAR `bar` (size a power of two, >= 16 for memory, >= 4 for I/O);
 * accesses inside it go to `fn`, with offsets relative to the BAR. */
int vmm_pci_dev_add_bar(struct vmm_pci_dev *dev, unsigned bar, enum vmm_pci_bar_kind kind,
                        uint64_t size, bool prefetchable, vmm_io_fn fn, void *opaque);
/* A BAR as declared, and where its registers say it is: where firmware
 * placed it or the guest moved it, decoding or not. Size 0 if unused. */
struct vmm_pci_bar_info {
    enum vmm_pci_bar_kind kind;
    uint64_t size;
    uint64_t address;
    bool prefetchable;
};
void vmm_pci_dev_bar(struct vmm_pci_dev *dev, unsigned bar, struct vmm_pci_bar_info *out);
/* Programs a BAR's address as firmware would, before the guest runs. */
int vmm_pci_dev_set_bar_address(struct vmm_pci_dev *dev, unsigned bar, uint64_t address);
/* Where the guest has the BAR now (0 if not decoding). */
uint64_t vmm_pci_dev_bar_address(struct vmm_pci_dev *dev, unsigned bar);

/* Appends a capability of `length` bytes (id, next pointer included) to
 * the list; its offset comes back in *offset. `wmask` (length bytes, or
 * NULL for read-only) says which bits the guest may write. */
int vmm_pci_dev_add_capability(struct vmm_pci_dev *dev, const uint8_t *body, const uint8_t *wmask,
                               uint8_t length, uint8_t *offset);
/* Sets the interrupt pin (1 = INTA) and line. */
void vmm_pci_dev_set_intx(struct vmm_pci_dev *dev, uint8_t pin, uint8_t line);

/* An assigned device: its config bytes as read from the device (up to
 * 4 KiB: the function's config space grows to hold them; -ENOMEM), and
 * which of them the device itself answers (reads come from device_read,
 * writes go to device_write as well as through the emulated write mask). */
int vmm_pci_dev_load_config(struct vmm_pci_dev *dev, const uint8_t *config, uint32_t size);
void vmm_pci_dev_set_passthrough(struct vmm_pci_dev *dev, uint32_t offset, uint32_t length, bool on);
/* Lets the guest write `mask`'s bits of [offset, offset+length). */
void vmm_pci_dev_set_wmask(struct vmm_pci_dev *dev, uint32_t offset, const uint8_t *mask, uint32_t length);

/* Snapshot: the config bytes as the guest sees them. Restore puts them
 * back whole, moves the BARs to where they say and tells the function
 * kind (config_written over all of it); -ENODEV if the saved bytes are
 * another vendor's or device's. */
void vmm_pci_dev_save_config(struct vmm_pci_dev *dev, uint8_t out[VMM_PCI_CFG_SIZE]);
int vmm_pci_dev_restore_config(struct vmm_pci_dev *dev, const uint8_t config[VMM_PCI_CFG_SIZE]);

/* Reads/writes config space as the guest does (`offset` 0..4095). */
void vmm_pci_dev_config_access(struct vmm_pci_dev *dev, uint32_t offset, uint8_t *data,
                               uint32_t size, bool is_write);
/* For function kinds: direct, unmasked access to the config bytes, with
 * the function's lock held by the caller (inside a hook). */
uint8_t *vmm_pci_dev_config_bytes(struct vmm_pci_dev *dev);

/* A segment's bus 0: host bridge at 00:00.0, an ECAM window at
 * `ecam_base` (VMM_PCI_ECAM_SIZE bytes), and with `conf1` the legacy
 * 0xcf8 ports, which reach segment 0 only. */
int vmm_pci_bus_create(const struct vmm_pci_space *space, uint64_t ecam_base, bool conf1, struct vmm_pci_bus **out);
/* Unregisters the buses' ranges and frees the bus (not the functions). */
void vmm_pci_bus_destroy(struct vmm_pci_bus *bus);
/* Takes the function out of `slot` and returns it (NULL if empty). vCPUs
 * may still hold it: remove with the vCPUs paused (vmm_vm_pause). */
struct vmm_pci_dev *vmm_pci_bus_remove(struct vmm_pci_bus *bus, unsigned slot);
/* Puts `dev` in `slot` (1-31), function 0. */
int vmm_pci_bus_add(struct vmm_pci_bus *bus, unsigned slot, struct vmm_pci_dev *dev);

/* Bus handlers, exported for tests: `opaque` is the struct vmm_pci_bus. */
void vmm_pci_conf1_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t size, bool is_write);
void vmm_pci_ecam_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t size, bool is_write);

#endif
