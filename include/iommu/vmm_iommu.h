/* A virtual IOMMU (virtio-iommu, virtio 1.2 §5.13) for the devices put
 * behind it (`iommu=on`): the guest's domains, their mappings (IOVA →
 * guest physical address) and the endpoints attached to them.
 *
 * An endpoint is a PCI function, named by its requester ID with the
 * segment above it (segment << 16 | bus << 8 | devfn), as the VIOT table
 * tells the guest. A virtio endpoint's device translates every ring and
 * buffer address through its domain (vmm_gmem_dma); an assigned device's
 * endpoint has a VFIO container of its own, and its domain's mappings are
 * VFIO DMA mappings of the guest RAM they name, so the host IOMMU enforces
 * them. Until the guest attaches an endpoint, it reaches nothing.
 *
 * Bounded whatever the guest asks: domains exist only while an endpoint is
 * in them, each holds at most VMM_IOMMU_MAX_MAPPINGS mappings of at most
 * the guest's RAM in all, all of them together VMM_IOMMU_MAX_TOTAL (8 MiB
 * of tables at most, given back as they empty), and only guest RAM can be
 * mapped. */
#ifndef VMM_IOMMU_H
#define VMM_IOMMU_H

#include <stdbool.h>
#include <stdint.h>

struct vmm_vm;
struct vmm_virtio;
struct vmm_iommu_endpoint;

#define VMM_IOMMU_MAX_MAPPINGS (1u << 16)
#define VMM_IOMMU_MAX_TOTAL (1u << 18)
#define VMM_IOMMU_MAX_ENDPOINTS 1024u
/* Faults kept for the guest's event queue until it offers buffers. */
#define VMM_IOMMU_FAULT_QUEUE 32u

/* The endpoint ID of a PCI function. */
static inline uint32_t vmm_iommu_endpoint_id(uint16_t segment, uint8_t bus, uint8_t slot, uint8_t function)
{
    return (uint32_t)segment << 16 | (uint32_t)bus << 8 | (uint32_t)slot << 3 | function;
}

/* virtio-iommu, a virtio device like the others (wrap it with
 * vmm_virtio_pci_create). `address_width`: the IOVA bits the guest may
 * map (Cloud Hypervisor's iommu_address_width, 64 by default). */
int vmm_virtio_iommu_create(struct vmm_vm *vm, unsigned address_width, struct vmm_virtio **out);

/* Registers endpoint `id` with `iommu` (VMM thread, before the guest can
 * see the function). `container` is an assigned device's own VFIO
 * container (Type1 v2, its group in, nothing mapped), not owned; -1 for a
 * virtio device. -EEXIST if the ID is taken, -ENOSPC past
 * VMM_IOMMU_MAX_ENDPOINTS. */
int vmm_iommu_endpoint_add(struct vmm_virtio *iommu, uint32_t id, int container,
                           struct vmm_iommu_endpoint **out);
/* The function left (VMM thread; a virtio endpoint's device is stopped):
 * the endpoint out of its domain, its container's mappings dropped. */
void vmm_iommu_endpoint_remove(struct vmm_iommu_endpoint *ep);

/* Puts a virtio device behind the IOMMU as `ep`, before its thread starts
 * and the guest reads its features: VIRTIO_F_ACCESS_PLATFORM is offered
 * and every address it reaches is translated. */
void vmm_virtio_set_iommu(struct vmm_virtio *device, struct vmm_iommu_endpoint *ep);

/* Device threads: where `len` bytes at `iova` are for `ep`'s device (a
 * write when `write`): 0, the guest physical address and how many of the
 * bytes are contiguous there (at most `len`), or -EFAULT when the endpoint
 * has no domain or no mapping allowing the access, which is reported to
 * the guest as a fault. */
int vmm_iommu_translate(const struct vmm_iommu_endpoint *ep, uint64_t iova, uint64_t len, bool write,
                        uint64_t *gpa, uint64_t *contiguous);

#endif
