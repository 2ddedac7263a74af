/* Guest RAM to and from a snapshot's memory file: see vmm_memory.h. */
#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vm/vmm_memory.h"
#include "vm/vm_internal.h"

#define PAGE 4096ul

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

bool vmm_page_is_zero(const uint8_t *page)
{
    const uint64_t *words = (const uint64_t *)page;
    for (size_t i = 0; i < PAGE / sizeof(uint64_t); i++)
        if (words[i])
            return false;
    return true;
}

static int write_all(int fd, const uint8_t *buf, size_t len, off_t offset)
{
    while (len > 0) {
        ssize_t n = pwrite(fd, buf, len, offset);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return n < 0 ? -errno : -EIO;
        buf += n;
        len -= (size_t)n;
        offset += n;
    }
    return 0;
}

static int read_all(int fd, uint8_t *buf, size_t len, off_t offset)
{
    while (len > 0) {
        ssize_t n = pread(fd, buf, len, offset);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return n < 0 ? -errno : -EIO; /* the file shrank under us */
        buf += n;
        len -= (size_t)n;
        offset += n;
    }
    return 0;
}

/* Each run of non-zero pages is one write. */
static int save_region(const struct vmm_mem_region *r, int fd, off_t base)
{
    const uint8_t *hva = r->hva;
    uint64_t run = 0;
    for (uint64_t at = 0; at <= r->size; at += PAGE) {
        bool data = at < r->size && !vmm_page_is_zero(hva + at);
        if (data)
            continue;
        if (at > run) {
            int ret = write_all(fd, hva + run, at - run, base + (off_t)run);
            if (ret < 0)
                return ret;
        }
        run = at + PAGE;
    }
    return 0;
}

static uint64_t ram_total(const struct vmm_vm *vm)
{
    uint64_t total = 0;
    for (unsigned i = 0; i < vm->nregions; i++)
        total += vm->regions[i].size;
    return total;
}

int vmm_memory_save(const struct vmm_vm *vm, int fd)
{
    if (ftruncate(fd, 0) < 0 || ftruncate(fd, (off_t)ram_total(vm)) < 0)
        return -errno;
    off_t base = 0;
    for (unsigned i = 0; i < vm->nregions; i++) {
        int ret = save_region(&vm->regions[i], fd, base);
        if (ret < 0)
            return ret;
        base += (off_t)vm->regions[i].size;
    }
    return fsync(fd) < 0 ? -errno : 0;
}

/* The file's data extents that fall in [base, base+size), into `hva`. */
static int restore_region(uint8_t *hva, uint64_t size, int fd, off_t base)
{
    off_t end = base + (off_t)size;
    for (off_t at = base; at < end;) {
        off_t data = lseek(fd, at, SEEK_DATA);
        if (data < 0)
            return errno == ENXIO ? 0 : -errno; /* holes to the end */
        if (data >= end)
            return 0;
        off_t hole = lseek(fd, data, SEEK_HOLE);
        if (hole < 0)
            return -errno;
        if (hole > end)
            hole = end;
        int ret = read_all(fd, hva + (data - base), (size_t)(hole - data), data);
        if (ret < 0)
            return ret;
        at = hole;
    }
    return 0;
}

/* Every page of the region faulted in now, not at the guest's first
 * touch; a write of the zero it holds where the kernel (before 5.14) has
 * no MADV_POPULATE_WRITE. */
static void populate(const struct vmm_mem_region *r)
{
    if (madvise(r->hva, r->size, MADV_POPULATE_WRITE) == 0)
        return;
    volatile uint8_t *hva = r->hva;
    for (uint64_t at = 0; at < r->size; at += PAGE)
        hva[at] = 0;
}

int vmm_memory_restore(const struct vmm_vm *vm, int fd, bool prefault)
{
    struct stat st;
    if (fstat(fd, &st) < 0)
        return -errno;
    if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size != ram_total(vm))
        return -EINVAL;
    off_t base = 0;
    for (unsigned i = 0; i < vm->nregions; i++) {
        const struct vmm_mem_region *r = &vm->regions[i];
        if (prefault)
            populate(r);
        int ret = restore_region(r->hva, r->size, fd, base);
        if (ret < 0)
            return ret;
        base += (off_t)r->size;
    }
    return 0;
}
