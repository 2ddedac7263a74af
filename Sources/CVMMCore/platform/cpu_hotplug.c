/* ACPI CPU hotplug registers: see vmm_cpu_hotplug.h. Two atomic bytes per
 * vCPU. A guest can only clear events it reads and take presence away
 * (eject); only the VMM thread makes a vCPU present. vCPU 0 is the boot
 * processor and never leaves. */
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "platform/vmm_cpu_hotplug.h"

struct vmm_cpu_hotplug {
    int eject_fd;
    atomic_bool present[VMM_CPU_HOTPLUG_MAX];
    atomic_uchar events[VMM_CPU_HOTPLUG_MAX];
};

int vmm_cpu_hotplug_create(unsigned present, int eject_fd, struct vmm_cpu_hotplug **out)
{
    if (present == 0 || present > VMM_CPU_HOTPLUG_MAX)
        return -EINVAL;
    struct vmm_cpu_hotplug *hp = calloc(1, sizeof(*hp));
    if (!hp)
        return -ENOMEM;
    hp->eject_fd = eject_fd;
    for (unsigned i = 0; i < present; i++)
        atomic_store(&hp->present[i], true);
    *out = hp;
    return 0;
}

void vmm_cpu_hotplug_destroy(struct vmm_cpu_hotplug *hp) { free(hp); }

void vmm_cpu_hotplug_announce(struct vmm_cpu_hotplug *hp, unsigned index, bool arrived)
{
    if (index == 0 || index >= VMM_CPU_HOTPLUG_MAX)
        return;
    if (arrived) {
        atomic_store(&hp->present[index], true);
        atomic_fetch_and(&hp->events[index], (unsigned char)~VMM_CPU_HOTPLUG_REMOVING);
        atomic_fetch_or(&hp->events[index], VMM_CPU_HOTPLUG_INSERTED);
    } else {
        atomic_fetch_and(&hp->events[index], (unsigned char)~VMM_CPU_HOTPLUG_INSERTED);
        atomic_fetch_or(&hp->events[index], VMM_CPU_HOTPLUG_REMOVING);
    }
}

void vmm_cpu_hotplug_withdraw(struct vmm_cpu_hotplug *hp, unsigned index)
{
    if (index == 0 || index >= VMM_CPU_HOTPLUG_MAX)
        return;
    atomic_fetch_and(&hp->events[index], (unsigned char)~VMM_CPU_HOTPLUG_INSERTED);
    atomic_store(&hp->present[index], false);
}

bool vmm_cpu_hotplug_present(const struct vmm_cpu_hotplug *hp, unsigned index)
{
    return index < VMM_CPU_HOTPLUG_MAX && atomic_load(&hp->present[index]);
}

static void eject(struct vmm_cpu_hotplug *hp, unsigned index)
{
    if (index == 0 || !atomic_exchange(&hp->present[index], false))
        return;
    uint64_t one = 1;
    while (write(hp->eject_fd, &one, sizeof(one)) < 0 && errno == EINTR)
        ;
}

void vmm_cpu_hotplug_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t size, bool is_write)
{
    struct vmm_cpu_hotplug *hp = opaque;
    /* Byte accesses only (the DSDT's fields are ByteAcc). */
    if (size != 1 || offset >= VMM_CPU_HOTPLUG_LEN) {
        if (!is_write)
            memset(data, 0, size);
        return;
    }
    unsigned index = (unsigned)(offset % VMM_CPU_HOTPLUG_MAX);
    bool status = offset < VMM_CPU_HOTPLUG_EVENTS;
    if (is_write) {
        if (status && data[0] == VMM_CPU_HOTPLUG_EJECT)
            eject(hp, index);
        return;
    }
    if (status)
        data[0] = atomic_load(&hp->present[index]) ? VMM_CPU_HOTPLUG_PRESENT : 0;
    else
        data[0] = atomic_exchange(&hp->events[index], 0);
}
