/* Private: zeroed memory resident only where it is written. */
#ifndef CVMM_SPARSE_H
#define CVMM_SPARSE_H

#include <stddef.h>

/* For a structure sized for the worst case that a VM mostly leaves
 * untouched (a device's chain of up to 1,024 buffers, the VM's 1,024 MSI
 * routes): whole pages from mmap, so only the pages written become
 * resident, where calloc would zero, and so make resident, all of them in
 * every VM. For what is allocated once per VM or device, never on a hot
 * path. NULL (errno set) on failure. */
void *vmm_sparse_alloc(size_t size);
/* Frees what vmm_sparse_alloc returned; NULL is ignored. */
void vmm_sparse_free(void *p);

#endif
