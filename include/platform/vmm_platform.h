/* The PC devices every guest finds at fixed ports, created and claimed in
 * one place: COM1 (0x3f8, IRQ 4; only with an output), the ACPI sleep and
 * reset register, the i8042's reset line, pvpanic, the CMOS RTC, and the
 * Generic Event Device (IRQ 5) through which the VMM raises the power
 * button and the hotplug events (vmm_ged.h). The hotplug controllers are
 * not here: they are the VMM's to announce through, not the board's. */
#ifndef VMM_PLATFORM_H
#define VMM_PLATFORM_H

#include <stdint.h>

#include "platform/vmm_rtc.h"
#include "platform/vmm_serial.h"

#define VMM_COM1_PORT 0x3f8
#define VMM_COM1_LEN 8
#define VMM_COM1_GSI 4

struct vmm_vm;
struct vmm_serial;
struct vmm_platform;

struct vmm_platform_config {
    /* COM1's output; -1: no COM1 at all (`--serial off`). Stays the caller's. */
    int serial_fd;
    /* What the RTC's CMOS reports as RAM below and above 4 GiB. */
    uint64_t ram_below_4g, ram_above_4g;
};

/* Creates the devices and claims their ports on the VM's PIO bus; on
 * failure, what was claimed and created is undone. */
int vmm_platform_create(struct vmm_vm *vm, const struct vmm_platform_config *cfg, struct vmm_platform **out);
/* Call once no vCPU can be in a handler (the vCPU threads joined). */
void vmm_platform_destroy(struct vmm_platform *p);
/* COM1, for the input path; NULL without one. */
struct vmm_serial *vmm_platform_serial(struct vmm_platform *p);
/* Raises GED events (VMM_GED_*) and the GED's interrupt. */
int vmm_platform_notify(struct vmm_platform *p, uint8_t events);

/* Snapshot: the board's devices with a state (COM1, the RTC, the GED's
 * unread events, raised again on restore). The version covers this struct
 * and the ones it holds; `ged_pending` was a reserved byte, zero, in the
 * states written before it: read as nothing pending. */
#define VMM_PLATFORM_STATE_VERSION 1
struct vmm_platform_state {
    struct vmm_serial_state serial;
    struct vmm_rtc_state rtc;
    uint8_t has_serial;
    uint8_t ged_pending;
    uint8_t reserved[5];
};
void vmm_platform_save(struct vmm_platform *p, struct vmm_platform_state *out);
/* -ENODEV when the state has COM1 and this board has none (or the other
 * way round); -EINVAL for a state no UART could be in. */
int vmm_platform_restore(struct vmm_platform *p, const struct vmm_platform_state *state);

#endif
