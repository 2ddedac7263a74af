/* VFIO device assignment: one container per VMM (Type1 v2 IOMMU) with the
 * groups of every assigned device, the command line's and hot-added ones;
 * guest RAM mapped for DMA once, at IOVA = guest physical address; the KVM
 * VFIO pseudo-device; and each assigned device as a PCI function.
 *
 * The fds (/dev/vfio/vfio, /dev/vfio/N, the device fd) are opened by the
 * caller before the privilege drop and stay the caller's. */
#ifndef VMM_VFIO_H
#define VMM_VFIO_H

#include <stdbool.h>
#include <stdint.h>

struct vmm_vm;
struct vmm_pci_dev;
struct vmm_vfio_pci;

/* Where a step failed, for the caller's message: `what` is static. */
struct vmm_vfio_error {
    int code;
    const char *what;
};

/* Checks the API version and Type1 v2 support of a container just opened. */
int vmm_vfio_container_check(int container, struct vmm_vfio_error *err);
/* Puts `group` in the container once it is viable (all its devices bound
 * to vfio-pci or to none); the `first` group also sets the container's
 * IOMMU (Type1 v2). A group leaves when its fd is closed; with the last,
 * the kernel drops the IOMMU and every DMA mapping. */
int vmm_vfio_group_attach(int container, int group, bool first, struct vmm_vfio_error *err);
/* The device fd for `name` ("0000:01:00.0") of `group`. */
int vmm_vfio_device_open(int group, const char *name, int *out, struct vmm_vfio_error *err);

/* Maps guest RAM regions `first`… for DMA: IOVA = GPA; pins the RAM. All
 * of them (first 0) when a container joins the VM, then each region that
 * memory hotplug adds. On failure, what this call mapped is unmapped. */
int vmm_vfio_dma_map(int container, const struct vmm_vm *vm, unsigned first);
/* Unmaps regions `first`…: every region (0) when the container leaves,
 * or what a failed memory hotplug had mapped. */
void vmm_vfio_dma_unmap(int container, const struct vmm_vm *vm, unsigned first);
/* Tells KVM about a group (KVM_DEV_TYPE_VFIO), for coherent DMA and
 * interrupt bypass; the KVM device lives as long as the VM. */
int vmm_vfio_kvm_group_add(struct vmm_vm *vm, int group);
/* Takes a group out of KVM's VFIO device again, so KVM stops holding it. */
void vmm_vfio_kvm_group_remove(struct vmm_vm *vm, int group);

/* The assigned device as a PCI function: its config space passed through
 * except the BARs, ROM BAR, interrupt line and MSI capability, which are
 * virtualized; mmappable BAR areas become KVM memory slots (no exit), the
 * rest is trapped and forwarded; INTx goes through an irqfd on `intx_gsi`
 * with resample (level-triggered, unmasked by the guest's EOI); MSI vectors
 * are GSI routes fed by VFIO's eventfds. Resets the device first. */
int vmm_vfio_pci_create(struct vmm_vm *vm, int device_fd, uint32_t intx_gsi, struct vmm_vfio_pci **out,
                        struct vmm_vfio_error *err);
struct vmm_pci_dev *vmm_vfio_pci_function(struct vmm_vfio_pci *d);
/* Interrupts off, slots removed, device reset; the device fd stays open. */
void vmm_vfio_pci_destroy(struct vmm_vfio_pci *d);

#endif
