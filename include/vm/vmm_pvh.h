/* The Xen PVH boot ABI's structures (xen/include/public/arch-x86/hvm/start_info.h),
 * which the Linux kernel reads at its PVH entry. */
#ifndef VMM_PVH_H
#define VMM_PVH_H

#include <stdint.h>

#define VMM_PVH_START_MAGIC 0x336ec578u
#define VMM_PVH_NOTE_PHYS32_ENTRY 18 /* XEN_ELFNOTE_PHYS32_ENTRY */

enum {
    VMM_E820_RAM = 1,
    VMM_E820_RESERVED = 2,
};

struct vmm_pvh_start_info {
    uint32_t magic;
    uint32_t version;
    uint32_t flags;
    uint32_t nr_modules;
    uint64_t modlist_paddr;
    uint64_t cmdline_paddr;
    uint64_t rsdp_paddr;
    uint64_t memmap_paddr;
    uint32_t memmap_entries;
    uint32_t reserved;
};
_Static_assert(sizeof(struct vmm_pvh_start_info) == 56, "hvm_start_info layout");

struct vmm_pvh_modlist_entry {
    uint64_t paddr;
    uint64_t size;
    uint64_t cmdline_paddr;
    uint64_t reserved;
};
_Static_assert(sizeof(struct vmm_pvh_modlist_entry) == 32, "hvm_modlist_entry layout");

struct vmm_pvh_memmap_entry {
    uint64_t addr;
    uint64_t size;
    uint32_t type;
    uint32_t reserved;
};
_Static_assert(sizeof(struct vmm_pvh_memmap_entry) == 24, "hvm_memmap_table_entry layout");

#endif
