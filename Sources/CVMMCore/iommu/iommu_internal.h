/* Private: the translation state behind virtio-iommu (vmm_iommu.h), kept
 * apart from the device that carries the guest's requests to it. */
#ifndef CVMM_IOMMU_INTERNAL_H
#define CVMM_IOMMU_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "iommu/vmm_iommu.h"
#include "vm/vmm_memory.h"

/* [iova, last] → gpa, inclusive as the guest's requests name ranges. */
struct iommu_mapping {
    uint64_t iova, last, gpa;
    uint32_t flags; /* VIRTIO_IOMMU_MAP_F_READ / _WRITE */
};

/* Mappings sorted by iova, never overlapping. */
struct iommu_domain {
    uint32_t id;
    unsigned endpoints;
    struct iommu_mapping *maps;
    uint32_t count, cap;
    uint64_t bytes;
};

struct vmm_iommu_endpoint {
    struct vmm_iommu *iommu;
    uint32_t id;
    int container; /* VFIO, or -1 */
    struct iommu_domain *domain;
};

struct iommu_fault {
    uint8_t reason;
    uint32_t flags, endpoint;
    uint64_t address;
};

struct vmm_iommu {
    /* Readers: device threads translating. Writers: the virtio-iommu
     * thread serving requests, the VMM thread adding endpoints. */
    pthread_rwlock_t lock;
    const struct vmm_gmem *mem;
    uint64_t input_last;
    struct vmm_iommu_endpoint *endpoints[VMM_IOMMU_MAX_ENDPOINTS];
    unsigned nendpoints;
    /* A domain is made by the first attach to it and freed with its last
     * endpoint: never more than the endpoints. */
    struct iommu_domain *domains[VMM_IOMMU_MAX_ENDPOINTS];
    unsigned ndomains;
    uint32_t mappings; /* in all domains, at most VMM_IOMMU_MAX_TOTAL */
    /* Faults for the event queue, oldest first; the newest are dropped
     * (and counted) while the guest offers no buffers. */
    pthread_mutex_t fault_lock;
    struct iommu_fault faults[VMM_IOMMU_FAULT_QUEUE];
    unsigned fault_head, fault_count;
    uint64_t faults_dropped;
    int fault_kick; /* the event queue's kick eventfd: wakes the device thread */
};

int iommu_init(struct vmm_iommu *m, const struct vmm_gmem *mem, unsigned address_width, int fault_kick);
void iommu_destroy(struct vmm_iommu *m);
/* The guest's requests (virtio-iommu thread): each a VIRTIO_IOMMU_S_* status. */
uint8_t iommu_attach(struct vmm_iommu *m, uint32_t domain, uint32_t endpoint);
uint8_t iommu_detach(struct vmm_iommu *m, uint32_t domain, uint32_t endpoint);
/* The driver reset the device: every endpoint out, every domain gone. */
void iommu_detach_all(struct vmm_iommu *m);
uint8_t iommu_map(struct vmm_iommu *m, uint32_t domain, uint64_t first, uint64_t last, uint64_t gpa, uint32_t flags);
uint8_t iommu_unmap(struct vmm_iommu *m, uint32_t domain, uint64_t first, uint64_t last);
int iommu_endpoint_add(struct vmm_iommu *m, uint32_t id, int container, struct vmm_iommu_endpoint **out);
bool iommu_has_endpoint(struct vmm_iommu *m, uint32_t endpoint);
/* Whether a fault waits for the guest. */
bool iommu_fault_pending(struct vmm_iommu *m);
/* The oldest fault not yet given to the guest. */
bool iommu_take_fault(struct vmm_iommu *m, struct iommu_fault *out);

#endif
