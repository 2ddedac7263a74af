/* Guest RAM: mappings registered as KVM memory slots (anonymous, or memfd
 * for shared RAM). Regions are
 * listed so that later a VFIO container can DMA-map the same memory. */
#ifndef VMM_MEMORY_H
#define VMM_MEMORY_H

#include <stdbool.h>
#include <stdint.h>

struct vmm_vm;

enum {
    VMM_MEM_SHARED    = 1u << 0, /* a memfd mapped shared, for vhost-user backends */
    VMM_MEM_PREFAULT  = 1u << 1, /* populate at allocation (MAP_POPULATE) */
    VMM_MEM_MERGEABLE = 1u << 2, /* madvise(MADV_MERGEABLE) for KSM */
    VMM_MEM_THP       = 1u << 3, /* madvise(MADV_HUGEPAGE) */
};

/* Where RAM starts in the host's address space (and an arena's base):
 * a 2 MiB boundary, so guest pages can be huge pages (memory.c). */
#define VMM_RAM_ALIGN (2ull << 20)

struct vmm_mem_region {
    uint64_t gpa;
    uint64_t size;
    void *hva;
    uint32_t slot;
    int fd; /* shared RAM's memfd (offset 0 is `gpa`), else -1 */
};

/* Maps `size` bytes (page-aligned) and makes them guest RAM at `gpa`.
 * VMM thread only; before the vCPUs start, or later for memory hotplug
 * (device threads see the new region through their view). */
int vmm_memory_add_ram(struct vmm_vm *vm, uint64_t gpa, uint64_t size,
                       uint32_t flags);

/* The same, mapping `fd` (shared RAM another VMM made: a memfd of at
 * least `size` bytes, offset 0 at `gpa`) instead of a new memfd: a local
 * migration's destination runs on the source's RAM. The VM owns `fd` once
 * this succeeds; on failure it stays the caller's. */
int vmm_memory_add_ram_file(struct vmm_vm *vm, uint64_t gpa, uint64_t size, uint32_t flags, int fd);

/* Address space for RAM: `size` bytes, PROT_NONE, starting at a
 * VMM_RAM_ALIGN boundary, or NULL and errno. KVM maps guest memory 2 MiB
 * at a time only where host and guest addresses agree modulo 2 MiB, and
 * transparent huge pages back a range only from such a boundary; kernels
 * before 6.7 (Debian 12's 6.1) place anonymous mappings at any page, which
 * would leave guests on 4 KiB mappings throughout. Unmapped with munmap. */
void *vmm_memory_reserve(uint64_t size);

/* RAM mapped from now on goes at `base + gpa` inside a reservation the
 * caller owns (vmm_memory_reserve's, outliving the VM), and goes back
 * to it when unmapped: a guest's RAM keeps its host addresses across
 * reboots, which vhost-user backends expect (they keep ring addresses).
 * Regions beyond `size` are mapped anywhere. */
void vmm_memory_set_arena(struct vmm_vm *vm, void *base, uint64_t size);
/* Unmaps a region of `vm`'s RAM (into its arena, if it has one). */
void vmm_memory_unmap(struct vmm_vm *vm, void *hva, uint64_t size);

/* Takes the newest region back out of the guest and unmaps it: undoes a
 * hot-add the guest was never told of. Every reader of the region list
 * (vCPUs, device threads) must be parked. */
void vmm_memory_remove_last(struct vmm_vm *vm);

unsigned vmm_memory_region_count(const struct vmm_vm *vm);
/* -ENOENT past the last region. */
int vmm_memory_region(const struct vmm_vm *vm, unsigned index,
                      struct vmm_mem_region *out);

/* Snapshot: every RAM region in order, back to back in `fd` from offset
 * 0, zero pages left as holes (a sparse file the size of all RAM).
 * VMM thread, the VM paused. 0 or the negative errno. */
int vmm_memory_save(const struct vmm_vm *vm, int fd);
/* Restore: the file's data back into the regions, its holes left as the
 * fresh RAM they are (zero, not faulted in unless `prefault`). -EINVAL if
 * the file is not the size of this VM's RAM. Before the vCPUs start. */
int vmm_memory_restore(const struct vmm_vm *vm, int fd, bool prefault);

/* The host address of [gpa, gpa+len) if one region holds all of it, else
 * NULL: callers never write across a hole by accident. */
void *vmm_memory_hva(const struct vmm_vm *vm, uint64_t gpa, uint64_t len);

/* Device memory straight in the guest (an assigned device's mmapped BAR):
 * a KVM memory slot, so guest accesses never exit. Not guest RAM: not in
 * the region list, never DMA-mapped. -EEXIST if it overlaps a slot. Safe
 * from any thread (a guest BAR move arrives on a vCPU). */
int vmm_memory_map_device(struct vmm_vm *vm, uint64_t gpa, uint64_t size, void *hva, uint32_t *slot);
void vmm_memory_unmap_device(struct vmm_vm *vm, uint32_t slot);

/* Physical address bits of the host's CPUs, which the guest's CPUID
 * reports too: nothing the guest must reach may lie above them. */
unsigned vmm_phys_address_bits(void);

/* A read-only view of guest RAM for device threads. A VM's view follows
 * its region count (`live_count`, read with acquire: regions are only ever
 * appended); tests and fuzzers build one over their own buffers with a
 * fixed `count` and no `live_count`. */
struct vmm_dirty_log;
struct vmm_iommu_endpoint;
struct vmm_gmem {
    const struct vmm_mem_region *regions;
    unsigned count;
    const unsigned *live_count;
    /* The VM's log of pages its devices write (vmm_dirty.h); NULL in a
     * view over other buffers. */
    struct vmm_dirty_log *dirty;
    /* A device behind the virtual IOMMU (vmm_iommu.h): the addresses it
     * is given are IOVAs of this endpoint's domain. NULL: guest physical. */
    const struct vmm_iommu_endpoint *iommu;
};
struct vmm_gmem vmm_memory_view(const struct vmm_vm *vm);
/* The regions the view has now (a VM's grow with memory hotplug). */
unsigned vmm_gmem_count(const struct vmm_gmem *mem);
void *vmm_gmem_hva(const struct vmm_gmem *mem, uint64_t gpa, uint64_t len);
/* A device's access to `len` bytes at `addr` (a write when `write`): the
 * host address of as many of them as are contiguous there (`*got`, at
 * most `len`), or NULL when the first byte is out of reach. Without an
 * IOMMU, all `len` bytes in one RAM region or NULL; behind one, through
 * the endpoint's mappings, whose refusal the guest hears of as a fault. */
void *vmm_gmem_dma(const struct vmm_gmem *mem, uint64_t addr, uint64_t len, bool write, uint64_t *got);
/* The same, all `len` bytes or NULL: rings and tables, which must be
 * contiguous. */
void *vmm_gmem_dma_whole(const struct vmm_gmem *mem, uint64_t addr, uint64_t len, bool write);

#endif
