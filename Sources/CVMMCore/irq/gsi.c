/* The KVM GSI routing table: the default IOAPIC and PIC pins plus the MSI
 * routes devices program, rebuilt and committed under one lock. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "common/sparse.h"
#include "irq/vmm_gsi.h"
#include "vm/vm_internal.h"

#define IOAPIC_PINS 24
#define PIC_PINS 16

#define TABLE_MAX (IOAPIC_PINS + PIC_PINS + VMM_GSI_MSI_MAX)

/* The commit buffer is allocated here, so that a commit on a vCPU thread
 * never calls the allocator. */
int vmm_gsi_routes_init(struct vmm_vm *vm)
{
    vm->gsi.table = vmm_sparse_alloc(sizeof(*vm->gsi.table) + TABLE_MAX * sizeof(vm->gsi.table->entries[0]));
    if (!vm->gsi.table)
        return -ENOMEM;
    pthread_mutex_init(&vm->gsi.lock, NULL);
    return 0;
}

void vmm_gsi_routes_destroy(struct vmm_vm *vm)
{
    if (!vm->gsi.table)
        return;
    pthread_mutex_destroy(&vm->gsi.lock);
    vmm_sparse_free(vm->gsi.table);
    vm->gsi.table = NULL;
}

/* The table KVM_CREATE_IRQCHIP starts with (kvm_setup_default_irq_routing),
 * then every programmed MSI route. Called with the lock held. */
static int gsi_commit(struct vmm_vm *vm)
{
    struct vmm_gsi_routes *g = &vm->gsi;
    struct kvm_irq_routing *table = g->table;
    unsigned n = 0;
    for (uint32_t pin = 0; pin < IOAPIC_PINS; pin++) {
        table->entries[n++] = (struct kvm_irq_routing_entry){
            .gsi = pin, .type = KVM_IRQ_ROUTING_IRQCHIP,
            .u.irqchip = { .irqchip = KVM_IRQCHIP_IOAPIC, .pin = pin } };
        /* IRQ 2 is the PIC cascade: only the IOAPIC has it. */
        if (pin < PIC_PINS && pin != 2)
            table->entries[n++] = (struct kvm_irq_routing_entry){
                .gsi = pin, .type = KVM_IRQ_ROUTING_IRQCHIP,
                .u.irqchip = { .irqchip = pin < 8 ? KVM_IRQCHIP_PIC_MASTER : KVM_IRQCHIP_PIC_SLAVE,
                               .pin = pin % 8 } };
    }
    for (unsigned i = 0; i < VMM_GSI_MSI_MAX; i++) {
        if (!g->routed[i])
            continue;
        table->entries[n++] = (struct kvm_irq_routing_entry){
            .gsi = VMM_GSI_MSI_BASE + i, .type = KVM_IRQ_ROUTING_MSI,
            .u.msi = { .address_lo = (uint32_t)g->address[i],
                       .address_hi = (uint32_t)(g->address[i] >> 32), .data = g->data[i] } };
    }
    table->nr = n;
    return ioctl(vm->vm_fd, KVM_SET_GSI_ROUTING, table) < 0 ? -errno : 0;
}

int vmm_gsi_alloc(struct vmm_vm *vm, uint32_t *out)
{
    struct vmm_gsi_routes *g = &vm->gsi;
    int ret = -ENOSPC;
    pthread_mutex_lock(&g->lock);
    for (unsigned i = 0; i < VMM_GSI_MSI_MAX; i++) {
        if (!g->used[i]) {
            g->used[i] = true;
            g->routed[i] = false;
            *out = VMM_GSI_MSI_BASE + i;
            ret = 0;
            break;
        }
    }
    pthread_mutex_unlock(&g->lock);
    return ret;
}

static bool gsi_index(uint32_t gsi, unsigned *index)
{
    if (gsi < VMM_GSI_MSI_BASE || gsi >= VMM_GSI_MSI_BASE + VMM_GSI_MSI_MAX)
        return false;
    *index = gsi - VMM_GSI_MSI_BASE;
    return true;
}

int vmm_gsi_set_msi(struct vmm_vm *vm, uint32_t gsi, uint64_t address, uint32_t data)
{
    struct vmm_gsi_routes *g = &vm->gsi;
    unsigned i;
    if (!gsi_index(gsi, &i))
        return -EINVAL;
    pthread_mutex_lock(&g->lock);
    int ret = -ENOENT;
    if (g->used[i]) {
        if (g->routed[i] && g->address[i] == address && g->data[i] == data) {
            ret = 0;
        } else {
            g->routed[i] = true;
            g->address[i] = address;
            g->data[i] = data;
            ret = gsi_commit(vm);
        }
    }
    pthread_mutex_unlock(&g->lock);
    return ret;
}

void vmm_gsi_free(struct vmm_vm *vm, uint32_t gsi)
{
    struct vmm_gsi_routes *g = &vm->gsi;
    unsigned i;
    if (!gsi_index(gsi, &i))
        return;
    pthread_mutex_lock(&g->lock);
    bool was_routed = g->routed[i];
    g->used[i] = g->routed[i] = false;
    if (was_routed)
        gsi_commit(vm);
    pthread_mutex_unlock(&g->lock);
}
