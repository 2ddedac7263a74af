/* VFIO containers and groups, DMA mapping of guest RAM, and the KVM VFIO
 * device: see vmm_vfio.h. */
#include <errno.h>
#include <stdbool.h>
#include <linux/kvm.h>
#include <linux/vfio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "vm/vm_internal.h"
#include "vfio/vmm_vfio.h"

static int fail(struct vmm_vfio_error *err, const char *what, int code)
{
    if (err) {
        err->code = code;
        err->what = what;
    }
    return code;
}

int vmm_vfio_container_check(int container, struct vmm_vfio_error *err)
{
    if (ioctl(container, VFIO_GET_API_VERSION) != VFIO_API_VERSION)
        return fail(err, "VFIO_GET_API_VERSION", -ENOTSUP);
    if (ioctl(container, VFIO_CHECK_EXTENSION, VFIO_TYPE1v2_IOMMU) <= 0)
        return fail(err, "VFIO_CHECK_EXTENSION(TYPE1v2)", -ENOTSUP);
    return 0;
}

int vmm_vfio_group_attach(int container, int group, bool first, struct vmm_vfio_error *err)
{
    struct vfio_group_status status = { .argsz = sizeof(status) };
    if (ioctl(group, VFIO_GROUP_GET_STATUS, &status) < 0)
        return fail(err, "VFIO_GROUP_GET_STATUS", -errno);
    if (!(status.flags & VFIO_GROUP_FLAGS_VIABLE))
        return fail(err, "the IOMMU group is not viable", -EBUSY);
    if (ioctl(group, VFIO_GROUP_SET_CONTAINER, &container) < 0)
        return fail(err, "VFIO_GROUP_SET_CONTAINER", -errno);
    /* The IOMMU model is set once a group is in; the kernel unsets it when
     * the last group leaves, with every mapping. */
    if (first && ioctl(container, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU) < 0) {
        int ret = -errno;
        ioctl(group, VFIO_GROUP_UNSET_CONTAINER);
        return fail(err, "VFIO_SET_IOMMU", ret);
    }
    return 0;
}

int vmm_vfio_device_open(int group, const char *name, int *out, struct vmm_vfio_error *err)
{
    int fd = ioctl(group, VFIO_GROUP_GET_DEVICE_FD, name);
    if (fd < 0)
        return fail(err, "VFIO_GROUP_GET_DEVICE_FD", -errno);
    *out = fd;
    return 0;
}

static void dma_unmap(int container, const struct vmm_vm *vm, unsigned first, unsigned end)
{
    for (unsigned i = first; i < end; i++) {
        struct vfio_iommu_type1_dma_unmap unmap = {
            .argsz = sizeof(unmap), .iova = vm->regions[i].gpa, .size = vm->regions[i].size };
        ioctl(container, VFIO_IOMMU_UNMAP_DMA, &unmap);
    }
}

int vmm_vfio_dma_map(int container, const struct vmm_vm *vm, unsigned first)
{
    unsigned end = vmm_memory_region_count(vm);
    for (unsigned i = first; i < end; i++) {
        const struct vmm_mem_region *r = &vm->regions[i];
        struct vfio_iommu_type1_dma_map map = {
            .argsz = sizeof(map),
            .flags = VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE,
            .vaddr = (uint64_t)(uintptr_t)r->hva,
            .iova = r->gpa,
            .size = r->size,
        };
        if (ioctl(container, VFIO_IOMMU_MAP_DMA, &map) < 0) {
            int ret = -errno;
            dma_unmap(container, vm, first, i);
            return ret;
        }
    }
    return 0;
}

void vmm_vfio_dma_unmap(int container, const struct vmm_vm *vm, unsigned first)
{
    dma_unmap(container, vm, first, vmm_memory_region_count(vm));
}

static int kvm_group(int device, int32_t group, uint64_t op)
{
    struct kvm_device_attr attr = {
        .group = KVM_DEV_VFIO_GROUP,
        .attr = op,
        .addr = (uint64_t)(uintptr_t)&group,
    };
    return ioctl(device, KVM_SET_DEVICE_ATTR, &attr) < 0 ? -errno : 0;
}

int vmm_vfio_kvm_group_add(struct vmm_vm *vm, int group)
{
    /* KVM allows one VFIO device per VM: every group joins it. */
    bool created = false;
    if (vm->vfio_kvm_fd < 0) {
        struct kvm_create_device create = { .type = KVM_DEV_TYPE_VFIO };
        if (ioctl(vm->vm_fd, KVM_CREATE_DEVICE, &create) < 0)
            return -errno;
        /* Closed with the VM: KVM holds it as long as the VM fd lives. */
        vm->vfio_kvm_fd = (int)create.fd;
        created = true;
    }
    int ret = kvm_group(vm->vfio_kvm_fd, group, KVM_DEV_VFIO_GROUP_ADD);
    if (ret < 0 && created) {
        close(vm->vfio_kvm_fd);
        vm->vfio_kvm_fd = -1;
    }
    return ret;
}

void vmm_vfio_kvm_group_remove(struct vmm_vm *vm, int group)
{
    if (vm->vfio_kvm_fd >= 0)
        kvm_group(vm->vfio_kvm_fd, group, KVM_DEV_VFIO_GROUP_DEL);
}
