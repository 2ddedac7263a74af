/* The PC's CMOS RTC at ports 0x70 (index) and 0x71 (data), as Cloud
 * Hypervisor offers it: the host's UTC time in BCD, 24-hour mode, and the
 * memory-size fields firmware would fill. Without it Linux's rtc_cmos
 * probe waits seconds for a clock that never answers. */
#ifndef VMM_RTC_H
#define VMM_RTC_H

#include <stdbool.h>
#include <stdint.h>

#define VMM_RTC_PORT 0x70
#define VMM_RTC_LEN 2

struct vmm_rtc;

/* `ram_below_4g` and `ram_above_4g` in bytes, for the CMOS memory fields. */
int vmm_rtc_create(uint64_t ram_below_4g, uint64_t ram_above_4g, struct vmm_rtc **out);
void vmm_rtc_destroy(struct vmm_rtc *rtc);
/* Bus handler; `opaque` is the struct vmm_rtc. */
void vmm_rtc_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t size, bool is_write);

/* Snapshot: the index register and the CMOS bytes the guest may have
 * written (the time is the host's, read at each access). */
#define VMM_RTC_STATE_VERSION 1
struct vmm_rtc_state {
    uint8_t index;
    uint8_t cmos[128];
};
void vmm_rtc_save(struct vmm_rtc *rtc, struct vmm_rtc_state *out);
void vmm_rtc_restore(struct vmm_rtc *rtc, const struct vmm_rtc_state *state);

#endif
