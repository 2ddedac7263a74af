/* Dirty page logs for live migration: see vmm_dirty.h. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "vm/vmm_dirty.h"
#include "vm/vm_internal.h"

#define PAGE_SHIFT 12

size_t vmm_dirty_bitmap_words(uint64_t size) { return (size_t)(((size >> PAGE_SHIFT) + 63) / 64); }

static int set_logging(struct vmm_vm *vm, const struct vmm_mem_region *r, bool on)
{
    struct kvm_userspace_memory_region mr = {
        .slot = r->slot,
        .flags = on ? KVM_MEM_LOG_DIRTY_PAGES : 0,
        .guest_phys_addr = r->gpa,
        .memory_size = r->size,
        .userspace_addr = (uint64_t)(uintptr_t)r->hva,
    };
    return ioctl(vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &mr) < 0 ? -errno : 0;
}

int vmm_dirty_log_start(struct vmm_vm *vm)
{
    for (unsigned i = 0; i < vm->nregions; i++) {
        size_t bytes = vmm_dirty_bitmap_words(vm->regions[i].size) * sizeof(uint64_t);
        uint64_t *bitmap = atomic_load(&vm->dirty.device[i]);
        if (!bitmap) {
            bitmap = calloc(1, bytes);
            if (!bitmap)
                return -ENOMEM;
            atomic_store(&vm->dirty.device[i], bitmap);
        } else {
            memset(bitmap, 0, bytes);
        }
    }
    for (unsigned i = 0; i < vm->nregions; i++) {
        int ret = set_logging(vm, &vm->regions[i], true);
        if (ret < 0) {
            while (i-- > 0)
                set_logging(vm, &vm->regions[i], false);
            return ret;
        }
    }
    atomic_store_explicit(&vm->dirty.active, true, memory_order_release);
    return 0;
}

int vmm_dirty_log_take(struct vmm_vm *vm, unsigned index, uint64_t *bitmap)
{
    if (index >= vm->nregions || !atomic_load(&vm->dirty.active))
        return -EINVAL;
    const struct vmm_mem_region *r = &vm->regions[index];
    size_t words = vmm_dirty_bitmap_words(r->size);
    /* KVM overwrites the bitmap it is given: pages not sent yet stay. */
    uint64_t *kvm = calloc(words, sizeof(uint64_t));
    if (!kvm)
        return -ENOMEM;
    struct kvm_dirty_log log = { .slot = r->slot, .dirty_bitmap = kvm };
    if (ioctl(vm->vm_fd, KVM_GET_DIRTY_LOG, &log) < 0) {
        int ret = -errno;
        free(kvm);
        return ret;
    }
    _Atomic uint64_t *device = (_Atomic uint64_t *)atomic_load(&vm->dirty.device[index]);
    /* Acquire: the bytes a device wrote before marking are what is sent. */
    for (size_t w = 0; w < words; w++)
        bitmap[w] |= kvm[w] | atomic_exchange_explicit(&device[w], 0, memory_order_acquire);
    free(kvm);
    return 0;
}

void vmm_dirty_log_stop(struct vmm_vm *vm)
{
    if (!atomic_exchange(&vm->dirty.active, false))
        return;
    for (unsigned i = 0; i < vm->nregions; i++)
        set_logging(vm, &vm->regions[i], false);
}

void vmm_dirty_log_destroy(struct vmm_vm *vm)
{
    for (unsigned i = 0; i < VMM_MAX_MEM_REGIONS; i++)
        free(atomic_exchange(&vm->dirty.device[i], NULL));
}

bool vmm_gmem_logging(const struct vmm_gmem *mem)
{
    return mem->dirty && atomic_load_explicit(&mem->dirty->active, memory_order_acquire);
}

void vmm_gmem_mark_dirty(const struct vmm_gmem *mem, uint64_t gpa, uint64_t len)
{
    struct vmm_dirty_log *log = mem->dirty;
    if (len == 0 || !vmm_gmem_logging(mem))
        return;
    unsigned count = vmm_gmem_count(mem);
    for (unsigned i = 0; i < count && i < VMM_MAX_MEM_REGIONS; i++) {
        const struct vmm_mem_region *r = &mem->regions[i];
        if (gpa < r->gpa || gpa - r->gpa >= r->size)
            continue;
        _Atomic uint64_t *bitmap = (_Atomic uint64_t *)atomic_load_explicit(&log->device[i], memory_order_acquire);
        if (!bitmap)
            return;
        uint64_t end = gpa - r->gpa + len;
        if (end > r->size || end < len)
            end = r->size;
        for (uint64_t page = (gpa - r->gpa) >> PAGE_SHIFT; page <= (end - 1) >> PAGE_SHIFT; page++)
            atomic_fetch_or_explicit(&bitmap[page / 64], 1ull << (page % 64), memory_order_release);
        return;
    }
}
