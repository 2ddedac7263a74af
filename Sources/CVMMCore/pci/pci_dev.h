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
    uint8_t cfg[VMM_PCI_CFG_SIZE];
    uint8_t wmask[VMM_PCI_CFG_SIZE];
    uint8_t w1c[VMM_PCI_CFG_SIZE];
    uint8_t passthrough[VMM_PCI_CFG_SIZE]; /* 1: the assigned device answers */
    uint8_t last_cap;  /* offset of the last capability, 0 if none */
    uint16_t cap_end;  /* where the next capability goes */
    struct pci_bar bars[VMM_PCI_BARS];
    const struct vmm_pci_ops *ops;
    void *opaque;
};

#endif
