/* ACPI memory hotplug registers: see vmm_mem_hotplug.h. A slot's range is
 * stored before its presence, and read by a vCPU only once present (the
 * guest reads _CRS after _STA), so the pair is consistent without a lock.
 * The guest can only read, and clear the events it reads. */
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "platform/vmm_mem_hotplug.h"

struct mem_slot {
    _Atomic uint64_t base, size;
    atomic_bool present;
    atomic_uchar events;
};

struct vmm_mem_hotplug {
    struct mem_slot slots[VMM_MEM_HOTPLUG_SLOTS];
};

int vmm_mem_hotplug_create(struct vmm_mem_hotplug **out)
{
    struct vmm_mem_hotplug *hp = calloc(1, sizeof(*hp));
    if (!hp)
        return -ENOMEM;
    *out = hp;
    return 0;
}

void vmm_mem_hotplug_destroy(struct vmm_mem_hotplug *hp) { free(hp); }

int vmm_mem_hotplug_announce(struct vmm_mem_hotplug *hp, unsigned slot, uint64_t base, uint64_t size)
{
    if (slot >= VMM_MEM_HOTPLUG_SLOTS || size == 0)
        return -EINVAL;
    struct mem_slot *s = &hp->slots[slot];
    if (atomic_load(&s->present))
        return -EBUSY;
    atomic_store(&s->base, base);
    atomic_store(&s->size, size);
    atomic_store(&s->present, true);
    atomic_fetch_or(&s->events, VMM_MEM_HOTPLUG_INSERTED);
    return 0;
}

void vmm_mem_hotplug_withdraw(struct vmm_mem_hotplug *hp, unsigned slot)
{
    if (slot >= VMM_MEM_HOTPLUG_SLOTS)
        return;
    struct mem_slot *s = &hp->slots[slot];
    atomic_fetch_and(&s->events, (unsigned char)~VMM_MEM_HOTPLUG_INSERTED);
    atomic_store(&s->present, false);
}

static uint32_t read_register(struct vmm_mem_hotplug *hp, uint64_t offset)
{
    struct mem_slot *s = &hp->slots[offset / 16];
    if (!atomic_load(&s->present))
        return 0;
    switch (offset % 16) {
    case VMM_MEM_HOTPLUG_BASE_LO: return (uint32_t)atomic_load(&s->base);
    case VMM_MEM_HOTPLUG_BASE_HI: return (uint32_t)(atomic_load(&s->base) >> 32);
    case VMM_MEM_HOTPLUG_SIZE_LO: return (uint32_t)atomic_load(&s->size);
    default: return (uint32_t)(atomic_load(&s->size) >> 32);
    }
}

void vmm_mem_hotplug_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t size, bool is_write)
{
    struct vmm_mem_hotplug *hp = opaque;
    if (is_write)
        return;
    memset(data, 0, size);
    if (offset < VMM_MEM_HOTPLUG_STATUS) {
        /* Whole registers only (the DSDT's fields are DWordAcc). */
        if (size == 4 && offset % 4 == 0) {
            uint32_t value = read_register(hp, offset);
            memcpy(data, &value, 4);
        }
        return;
    }
    if (size != 1 || offset >= VMM_MEM_HOTPLUG_LEN)
        return;
    unsigned slot = (unsigned)(offset - VMM_MEM_HOTPLUG_STATUS) % VMM_MEM_HOTPLUG_SLOTS;
    if (offset < VMM_MEM_HOTPLUG_EVENTS)
        data[0] = atomic_load(&hp->slots[slot].present) ? VMM_MEM_HOTPLUG_PRESENT : 0;
    else
        data[0] = atomic_exchange(&hp->slots[slot].events, 0);
}
