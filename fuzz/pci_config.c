/* libFuzzer target: guest accesses to PCI configuration space (conf1 and
 * ECAM), a function with 32-bit, 64-bit and I/O BARs, and its MSI-X table
 * and PBA, on a real VM's buses (/dev/kvm). Input: records of 8 bytes —
 * kind, size, offset (2 bytes), value (4 bytes). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "CVMMCore.h"

static struct vmm_vm *vm;
static struct vmm_pci_bus *bus;
static struct vmm_pci_dev *dev;
static struct vmm_msix *msix;

static void bar_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t size, bool is_write)
{
    (void)opaque;
    if (offset >= 0x4000 && offset < 0x5000)
        vmm_msix_table_io(msix, offset - 0x4000, data, size, is_write);
    else if (offset >= 0x6000 && offset < 0x7000)
        vmm_msix_pba_io(msix, offset - 0x6000, data, size, is_write);
    else if (!is_write)
        memset(data, 0, size);
}

static void config_written(void *opaque, uint32_t offset, uint32_t size)
{
    (void)opaque;
    vmm_msix_config_written(msix, offset, size);
}

static const struct vmm_pci_ops ops = { .config_written = config_written };

static void setup(void)
{
    int kvm;
    struct vmm_error err;
    if (vmm_kvm_open(&kvm, &err) < 0 || vmm_vm_create(kvm, &vm, &err) < 0 ||
        vmm_pci_bus_create(&(struct vmm_pci_space){ vmm_vm_pio_bus(vm), vmm_vm_mmio_bus(vm) }, 0xe8000000, true, &bus) < 0 ||
        vmm_pci_dev_create(&(struct vmm_pci_space){ vmm_vm_pio_bus(vm), vmm_vm_mmio_bus(vm) }, 0x1af4, 0x1044, 0xff0000, 1, 0x1af4, 0x1100, &ops, NULL, &dev) < 0 ||
        vmm_pci_dev_add_bar(dev, 0, VMM_PCI_BAR_MEM64, 0x8000, false, bar_io, NULL) < 0 ||
        vmm_pci_dev_add_bar(dev, 2, VMM_PCI_BAR_MEM32, 0x1000, false, bar_io, NULL) < 0 ||
        vmm_pci_dev_add_bar(dev, 3, VMM_PCI_BAR_IO, 0x20, false, bar_io, NULL) < 0 ||
        vmm_msix_create(vm, dev, 8, 0, 0x4000, 0x6000, &msix) < 0 || vmm_pci_bus_add(bus, 1, dev) < 0) {
        fprintf(stderr, "pci_config fuzz: cannot set up a VM (needs /dev/kvm)\n");
        exit(1);
    }
    vmm_pci_dev_set_bar_address(dev, 0, 0x100000000ull);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!vm)
        setup();
    for (size_t at = 0; at + 8 <= size; at += 8) {
        const uint8_t *r = data + at;
        uint32_t len = 1u << (r[1] & 3); /* 1, 2, 4 or 8 */
        uint16_t offset = (uint16_t)(r[2] | r[3] << 8);
        uint8_t value[8];
        memcpy(value, r + 4, 4);
        memcpy(value + 4, r + 4, 4);
        bool write = r[0] & 1;
        switch ((r[0] >> 1) % 5) {
        case 0: /* conf1: address register, then data port */
            vmm_pci_conf1_io(bus, 0, value, 4, true);
            vmm_pci_conf1_io(bus, 4 + (offset & 3), value, len > 4 ? 4 : len, write);
            break;
        case 1: /* ECAM anywhere in bus 0's window */
            vmm_pci_ecam_io(bus, ((uint64_t)offset << 8 | r[1]) & (VMM_PCI_ECAM_SIZE - 1), value, len, write);
            break;
        case 2: /* the function's own config space */
            vmm_pci_dev_config_access(dev, offset & 0x1fff, value, len, write);
            break;
        case 3: /* the MSI-X table and PBA through whichever bus range decodes them */
            vmm_bus_dispatch(vmm_vm_mmio_bus(vm), vmm_pci_dev_bar_address(dev, 0) + (offset & 0x7fff), value, len, write);
            break;
        default:
            vmm_msix_signal(msix, offset % 10);
            break;
        }
    }
    return 0;
}
