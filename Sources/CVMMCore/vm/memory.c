/* Guest RAM regions: one mapping and one KVM memslot each. Private RAM is
 * anonymous memory; shared RAM is a memfd, whose descriptor vhost-user
 * backends map too (as Cloud Hypervisor backs `shared=on`). */
#include <cpuid.h>
#include <errno.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "iommu/vmm_iommu.h"
#include "vm/vmm_memory.h"
#include "vm/vm_internal.h"

void vmm_memory_set_arena(struct vmm_vm *vm, void *base, uint64_t size)
{
    vm->arena = base;
    vm->arena_size = size;
}

static bool in_arena(const struct vmm_vm *vm, const void *hva, uint64_t size)
{
    const uint8_t *p = hva;
    return vm->arena && p >= vm->arena && size <= vm->arena_size && (uint64_t)(p - vm->arena) <= vm->arena_size - size;
}

void vmm_memory_unmap(struct vmm_vm *vm, void *hva, uint64_t size)
{
    /* Back into the reservation, so nothing else is mapped there meanwhile. */
    if (in_arena(vm, hva, size))
        mmap(hva, size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED, -1, 0);
    else
        munmap(hva, size);
}

void *vmm_memory_reserve(uint64_t size)
{
    uint64_t span = size + VMM_RAM_ALIGN;
    if (span < size) {
        errno = ENOMEM;
        return NULL;
    }
    uint8_t *p = mmap(NULL, span, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED)
        return NULL;
    uint8_t *start = (uint8_t *)(((uintptr_t)p + VMM_RAM_ALIGN - 1) & ~(uintptr_t)(VMM_RAM_ALIGN - 1));
    if (start > p)
        munmap(p, (size_t)(start - p));
    if (p + span > start + size)
        munmap(start + size, (size_t)(p + span - (start + size)));
    return start;
}

static int add_ram(struct vmm_vm *vm, uint64_t gpa, uint64_t size, uint32_t flags, int file);

int vmm_memory_add_ram(struct vmm_vm *vm, uint64_t gpa, uint64_t size, uint32_t flags)
{
    return add_ram(vm, gpa, size, flags, -1);
}

int vmm_memory_add_ram_file(struct vmm_vm *vm, uint64_t gpa, uint64_t size, uint32_t flags, int fd)
{
    struct stat st;
    if (fstat(fd, &st) < 0)
        return -errno;
    if ((uint64_t)st.st_size < size)
        return -EINVAL;
    return add_ram(vm, gpa, size, flags | VMM_MEM_SHARED, fd);
}

static int add_ram(struct vmm_vm *vm, uint64_t gpa, uint64_t size, uint32_t flags, int file)
{
    uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);
    if (size == 0 || (gpa | size) & (page - 1) || gpa + size < gpa)
        return -EINVAL;
    if (vm->nregions == VMM_MAX_MEM_REGIONS)
        return -ENOSPC;
    for (unsigned i = 0; i < vm->nregions; i++) {
        const struct vmm_mem_region *r = &vm->regions[i];
        if (gpa < r->gpa + r->size && r->gpa < gpa + size)
            return -EEXIST;
    }

    int fd = file;
    if (fd < 0 && (flags & VMM_MEM_SHARED)) {
        fd = memfd_create("guest-ram", MFD_CLOEXEC);
        if (fd < 0)
            return -errno;
        if (ftruncate(fd, (off_t)size) < 0) {
            int saved = -errno;
            close(fd);
            return saved;
        }
    }
    int mflags = fd >= 0 ? MAP_SHARED : MAP_PRIVATE | MAP_ANONYMOUS;
    mflags |= MAP_NORESERVE;
    if (flags & VMM_MEM_PREFAULT)
        mflags |= MAP_POPULATE;
    void *at = NULL, *hole = NULL;
    if (vm->arena && size <= vm->arena_size && gpa <= vm->arena_size - size)
        at = vm->arena + gpa;
    else
        at = hole = vmm_memory_reserve(size); /* NULL (no room for the slack): anywhere */
    void *hva = mmap(at, size, PROT_READ | PROT_WRITE, mflags | (at ? MAP_FIXED : 0), fd, 0);
    if (hva == MAP_FAILED) {
        int saved = -errno;
        if (hole)
            munmap(hole, size);
        if (fd >= 0 && fd != file)
            close(fd);
        return saved;
    }

    int ret = 0;
    if ((flags & VMM_MEM_MERGEABLE) && madvise(hva, size, MADV_MERGEABLE) < 0)
        ret = -errno;
    if (!ret && (flags & VMM_MEM_THP) && madvise(hva, size, MADV_HUGEPAGE) < 0)
        ret = -errno;
    /* Guest RAM never belongs in a core dump of the VMM. */
    if (!ret && madvise(hva, size, MADV_DONTDUMP) < 0)
        ret = -errno;

    uint32_t slot = vm->nregions;
    struct kvm_userspace_memory_region mr = {
        .slot = slot,
        .guest_phys_addr = gpa,
        .memory_size = size,
        .userspace_addr = (uint64_t)(uintptr_t)hva,
    };
    if (!ret && ioctl(vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &mr) < 0)
        ret = -errno;
    if (ret) {
        vmm_memory_unmap(vm, hva, size);
        if (fd >= 0 && fd != file)
            close(fd);
        return ret;
    }
    vm->regions[slot] = (struct vmm_mem_region){ gpa, size, hva, slot, fd };
    /* Published after it is written: device threads walk the list while
     * the VM runs (a hot-added region arrives under them). */
    __atomic_store_n(&vm->nregions, slot + 1, __ATOMIC_RELEASE);
    return 0;
}

void vmm_memory_remove_last(struct vmm_vm *vm)
{
    unsigned count = vm->nregions;
    if (count == 0)
        return;
    const struct vmm_mem_region *r = &vm->regions[count - 1];
    __atomic_store_n(&vm->nregions, count - 1, __ATOMIC_RELEASE);
    /* Size 0 deletes the slot. */
    struct kvm_userspace_memory_region mr = { .slot = r->slot, .guest_phys_addr = r->gpa };
    ioctl(vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &mr);
    vmm_memory_unmap(vm, r->hva, r->size);
    if (r->fd >= 0)
        close(r->fd);
}

unsigned vmm_memory_region_count(const struct vmm_vm *vm) { return __atomic_load_n(&vm->nregions, __ATOMIC_ACQUIRE); }

int vmm_memory_region(const struct vmm_vm *vm, unsigned index, struct vmm_mem_region *out)
{
    if (index >= vmm_memory_region_count(vm))
        return -ENOENT;
    *out = vm->regions[index];
    return 0;
}

void *vmm_memory_hva(const struct vmm_vm *vm, uint64_t gpa, uint64_t len)
{
    struct vmm_gmem mem = vmm_memory_view(vm);
    return vmm_gmem_hva(&mem, gpa, len);
}

struct vmm_gmem vmm_memory_view(const struct vmm_vm *vm)
{
    /* Devices mark what they write through their view: the log is the VM's own. */
    return (struct vmm_gmem){ vm->regions, 0, &vm->nregions, (struct vmm_dirty_log *)&vm->dirty, NULL };
}

unsigned vmm_gmem_count(const struct vmm_gmem *mem)
{
    return mem->live_count ? __atomic_load_n(mem->live_count, __ATOMIC_ACQUIRE) : mem->count;
}

void *vmm_gmem_hva(const struct vmm_gmem *mem, uint64_t gpa, uint64_t len)
{
    unsigned count = vmm_gmem_count(mem);
    for (unsigned i = 0; i < count; i++) {
        const struct vmm_mem_region *r = &mem->regions[i];
        if (gpa >= r->gpa && gpa - r->gpa <= r->size && len <= r->size - (gpa - r->gpa))
            return (uint8_t *)r->hva + (gpa - r->gpa);
    }
    return NULL;
}

void *vmm_gmem_dma(const struct vmm_gmem *mem, uint64_t addr, uint64_t len, bool write, uint64_t *got)
{
    uint64_t gpa = addr;
    *got = len;
    if (mem->iommu && vmm_iommu_translate(mem->iommu, addr, len, write, &gpa, got) < 0)
        return NULL;
    return vmm_gmem_hva(mem, gpa, *got);
}

void *vmm_gmem_dma_whole(const struct vmm_gmem *mem, uint64_t addr, uint64_t len, bool write)
{
    uint64_t got;
    void *hva = vmm_gmem_dma(mem, addr, len, write, &got);
    return hva && got == len ? hva : NULL;
}

int vmm_memory_map_device(struct vmm_vm *vm, uint64_t gpa, uint64_t size, void *hva, uint32_t *slot)
{
    uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);
    if (size == 0 || (gpa | size | (uint64_t)(uintptr_t)hva) & (page - 1) || gpa + size < gpa)
        return -EINVAL;
    pthread_mutex_lock(&vm->device_slots_lock);
    int ret = -ENOSPC;
    for (uint32_t i = 0; i < VMM_MAX_DEVICE_SLOTS; i++) {
        if (vm->device_slots[i].used)
            continue;
        struct kvm_userspace_memory_region mr = {
            .slot = VMM_MAX_MEM_REGIONS + i,
            .guest_phys_addr = gpa,
            .memory_size = size,
            .userspace_addr = (uint64_t)(uintptr_t)hva,
        };
        ret = ioctl(vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &mr) < 0 ? -errno : 0;
        if (ret == 0) {
            vm->device_slots[i].used = true;
            vm->device_slots[i].gpa = gpa;
            vm->device_slots[i].size = size;
            *slot = mr.slot;
        }
        break;
    }
    pthread_mutex_unlock(&vm->device_slots_lock);
    return ret;
}

void vmm_memory_unmap_device(struct vmm_vm *vm, uint32_t slot)
{
    uint32_t i = slot - VMM_MAX_MEM_REGIONS;
    if (slot < VMM_MAX_MEM_REGIONS || i >= VMM_MAX_DEVICE_SLOTS)
        return;
    pthread_mutex_lock(&vm->device_slots_lock);
    if (vm->device_slots[i].used) {
        /* Size 0 deletes the slot. */
        struct kvm_userspace_memory_region mr = { .slot = slot, .guest_phys_addr = vm->device_slots[i].gpa };
        ioctl(vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &mr);
        vm->device_slots[i].used = false;
    }
    pthread_mutex_unlock(&vm->device_slots_lock);
}

unsigned vmm_phys_address_bits(void)
{
    unsigned eax, ebx, ecx, edx;
    if (!__get_cpuid(0x80000008, &eax, &ebx, &ecx, &edx))
        return 36;
    return eax & 0xff;
}
