#include "common/sparse.h"

#include <errno.h>
#include <stdint.h>
#include <sys/mman.h>

/* The mapping's length sits in front of what the caller gets, which keeps
 * the 16-byte alignment malloc gives. */
#define HEADER 16

void *vmm_sparse_alloc(size_t size)
{
    if (size > SIZE_MAX - HEADER) {
        errno = ENOMEM;
        return NULL;
    }
    size_t length = size + HEADER;
    void *base = mmap(NULL, length, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (base == MAP_FAILED)
        return NULL;
    *(size_t *)base = length;
    return (uint8_t *)base + HEADER;
}

void vmm_sparse_free(void *p)
{
    if (!p)
        return;
    void *base = (uint8_t *)p - HEADER;
    munmap(base, *(size_t *)base);
}
