/* The fixed-port PC devices: see vmm_platform.h. */
#include <errno.h>
#include <stdlib.h>

#include "irq/vmm_irq.h"
#include "platform/vmm_ged.h"
#include "platform/vmm_platform.h"
#include "platform/vmm_power.h"
#include "platform/vmm_pvpanic.h"
#include "platform/vmm_rtc.h"
#include "platform/vmm_serial.h"
#include "vm/vmm_bus.h"
#include "vm/vmm_vm.h"

/* The ports claimed, in order, so that a failure or the end gives them back. */
#define PLATFORM_MAX_RANGES 6

struct vmm_platform {
    struct vmm_vm *vm;
    struct vmm_serial *serial;
    struct vmm_rtc *rtc;
    struct vmm_ged *ged;
    /* The devices keep pointers to their lines: they live here. */
    struct vmm_irq serial_irq, ged_irq;
    uint64_t claimed[PLATFORM_MAX_RANGES];
    unsigned nclaimed;
};

static int claim(struct vmm_platform *p, uint64_t base, uint64_t len, vmm_io_fn fn, void *opaque)
{
    int ret = vmm_bus_register(vmm_vm_pio_bus(p->vm), base, len, fn, opaque);
    if (ret == 0)
        p->claimed[p->nclaimed++] = base;
    return ret;
}

void vmm_platform_destroy(struct vmm_platform *p)
{
    if (!p)
        return;
    while (p->nclaimed > 0)
        vmm_bus_unregister(vmm_vm_pio_bus(p->vm), p->claimed[--p->nclaimed]);
    vmm_serial_destroy(p->serial);
    vmm_rtc_destroy(p->rtc);
    vmm_ged_destroy(p->ged);
    vmm_irq_release(p->vm, &p->serial_irq);
    vmm_irq_release(p->vm, &p->ged_irq);
    free(p);
}

static int create_devices(struct vmm_platform *p, const struct vmm_platform_config *cfg)
{
    int ret = vmm_rtc_create(cfg->ram_below_4g, cfg->ram_above_4g, &p->rtc);
    if (ret < 0)
        return ret;
    ret = vmm_irq_create(p->vm, VMM_GED_GSI, &p->ged_irq);
    if (ret < 0)
        return ret;
    ret = vmm_ged_create(&p->ged_irq, &p->ged);
    if (ret < 0 || cfg->serial_fd < 0)
        return ret;
    ret = vmm_irq_create(p->vm, VMM_COM1_GSI, &p->serial_irq);
    if (ret < 0)
        return ret;
    return vmm_serial_create(cfg->serial_fd, &p->serial_irq, &p->serial);
}

static int claim_ports(struct vmm_platform *p)
{
    int ret;
    if ((ret = claim(p, VMM_ACPI_SLEEP_PORT, VMM_ACPI_SLEEP_LEN, vmm_acpi_sleep_io, p->vm)) < 0 ||
        (ret = claim(p, VMM_I8042_CMD_PORT, 1, vmm_i8042_io, p->vm)) < 0 ||
        (ret = claim(p, VMM_PVPANIC_PORT, 1, vmm_pvpanic_io, p->vm)) < 0 ||
        (ret = claim(p, VMM_RTC_PORT, VMM_RTC_LEN, vmm_rtc_io, p->rtc)) < 0 ||
        (ret = claim(p, VMM_GED_PORT, 1, vmm_ged_io, p->ged)) < 0)
        return ret;
    return p->serial ? claim(p, VMM_COM1_PORT, VMM_COM1_LEN, vmm_serial_io, p->serial) : 0;
}

int vmm_platform_create(struct vmm_vm *vm, const struct vmm_platform_config *cfg, struct vmm_platform **out)
{
    struct vmm_platform *p = calloc(1, sizeof(*p));
    if (!p)
        return -ENOMEM;
    p->vm = vm;
    p->serial_irq.eventfd = -1;
    p->ged_irq.eventfd = -1;
    int ret = create_devices(p, cfg);
    if (ret == 0)
        ret = claim_ports(p);
    if (ret < 0) {
        vmm_platform_destroy(p);
        return ret;
    }
    *out = p;
    return 0;
}

struct vmm_serial *vmm_platform_serial(struct vmm_platform *p) { return p->serial; }

int vmm_platform_notify(struct vmm_platform *p, uint8_t events) { return vmm_ged_notify(p->ged, events); }

_Static_assert(sizeof(struct vmm_platform_state) == 216, "platform state layout changed: bump VMM_PLATFORM_STATE_VERSION");

void vmm_platform_save(struct vmm_platform *p, struct vmm_platform_state *out)
{
    *out = (struct vmm_platform_state){ .has_serial = p->serial != NULL, .ged_pending = vmm_ged_pending(p->ged) };
    if (p->serial)
        vmm_serial_save(p->serial, &out->serial);
    vmm_rtc_save(p->rtc, &out->rtc);
}

int vmm_platform_restore(struct vmm_platform *p, const struct vmm_platform_state *state)
{
    if ((state->has_serial != 0) != (p->serial != NULL))
        return -ENODEV;
    int ret = p->serial ? vmm_serial_restore(p->serial, &state->serial) : 0;
    if (ret < 0)
        return ret;
    vmm_rtc_restore(p->rtc, &state->rtc);
    return state->ged_pending ? vmm_ged_notify(p->ged, state->ged_pending) : 0;
}
