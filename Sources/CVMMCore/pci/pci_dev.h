/* Private layout of a PCI function, shared by pci.c and the function kinds. */
#ifndef CVMM_PCI_DEV_H
#define CVMM_PCI_DEV_H

#include <pthread.h>

#include "pci/vmm_pci.h"

struct pci_bar {
    enum vmm_pci_bar_kind kind;
    uint64_t size;
    bool prefetchable;
    vmm_io_fn fn;
    void *opaque;
    bool mapped;          /* registered on a bus at `mapped_at` */
    uint64_t mapped_at;
};

struct vmm_pci_dev {
    pthread_mutex_t lock;
    struct vmm_pci_space space;
    /* An emulated function has the 256 bytes of conventional config space
     * (the rest reads as zeros, no capability there); an assigned one gets
     * what its device has, up to 4 KiB, once loaded. Four tables of
     * cfg_size bytes in one allocation. */
    uint32_t cfg_size;
    uint8_t *cfg;
    uint8_t *wmask;
    uint8_t *w1c;
    uint8_t *passthrough; /* 1: the assigned device answers */
    uint8_t last_cap;  /* offset of the last capability, 0 if none */
    uint16_t cap_end;  /* where the next capability goes */
    struct pci_bar bars[VMM_PCI_BARS];
    const struct vmm_pci_ops *ops;
    void *opaque;
};

#endif
