/* CMOS RTC: see vmm_rtc.h. */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "platform/vmm_rtc.h"

#define INDEX_MASK 0x7f
#define REG_SECONDS 0x00
#define REG_MINUTES 0x02
#define REG_HOURS 0x04
#define REG_WEEKDAY 0x06
#define REG_DAY 0x07
#define REG_MONTH 0x08
#define REG_YEAR 0x09
#define REG_A 0x0a
#define REG_B 0x0b
#define REG_C 0x0c
#define REG_D 0x0d
#define REG_CENTURY 0x32
#define A_DIVIDER_32K (1u << 5)
#define A_UPDATE_IN_PROGRESS (1u << 7)
#define B_24_HOUR (1u << 1)
#define D_VALID_RAM_TIME (1u << 7)
/* Linux reads the time while UIP is clear; UIP is set for the 244 us before
 * each second's update, as on the MC146818. */
#define UIP_NS (1000000000l - 244000l)

struct vmm_rtc {
    pthread_mutex_t lock;
    uint8_t index;
    uint8_t cmos[128];
};

int vmm_rtc_create(uint64_t ram_below_4g, uint64_t ram_above_4g, struct vmm_rtc **out)
{
    struct vmm_rtc *rtc = calloc(1, sizeof(*rtc));
    if (!rtc)
        return -ENOMEM;
    pthread_mutex_init(&rtc->lock, NULL);
    rtc->cmos[REG_B] = B_24_HOUR;
    /* RAM above 16 MiB in 64 KiB units, and above 4 GiB likewise. */
    uint64_t ext = ram_below_4g > (16u << 20) ? (ram_below_4g - (16u << 20)) >> 16 : 0;
    if (ext > 0xffff)
        ext = 0xffff;
    rtc->cmos[0x34] = (uint8_t)ext;
    rtc->cmos[0x35] = (uint8_t)(ext >> 8);
    uint64_t high = ram_above_4g >> 16;
    if (high > 0xffffff)
        high = 0xffffff;
    rtc->cmos[0x5b] = (uint8_t)high;
    rtc->cmos[0x5c] = (uint8_t)(high >> 8);
    rtc->cmos[0x5d] = (uint8_t)(high >> 16);
    *out = rtc;
    return 0;
}

void vmm_rtc_destroy(struct vmm_rtc *rtc)
{
    if (!rtc)
        return;
    pthread_mutex_destroy(&rtc->lock);
    free(rtc);
}

_Static_assert(sizeof(struct vmm_rtc_state) == 129, "RTC state layout changed: bump VMM_RTC_STATE_VERSION");

void vmm_rtc_save(struct vmm_rtc *rtc, struct vmm_rtc_state *out)
{
    pthread_mutex_lock(&rtc->lock);
    out->index = rtc->index;
    memcpy(out->cmos, rtc->cmos, sizeof(out->cmos));
    pthread_mutex_unlock(&rtc->lock);
}

void vmm_rtc_restore(struct vmm_rtc *rtc, const struct vmm_rtc_state *in)
{
    pthread_mutex_lock(&rtc->lock);
    rtc->index = in->index & INDEX_MASK;
    memcpy(rtc->cmos, in->cmos, sizeof(rtc->cmos));
    pthread_mutex_unlock(&rtc->lock);
}

static uint8_t bcd(int v) { return (uint8_t)((v / 10) << 4 | v % 10); }

struct civil {
    int year, month, day, weekday, hour, minute, second;
};

/* UTC from seconds since 1970, by arithmetic: glibc's gmtime_r reads the
 * time zone files on first use, which a vCPU thread's filter forbids.
 * (The days-to-date step is the proleptic Gregorian era algorithm.) */
static struct civil utc(int64_t t)
{
    int64_t days = t / 86400, rem = t % 86400;
    if (rem < 0) {
        rem += 86400;
        days--;
    }
    struct civil c = { .hour = (int)(rem / 3600), .minute = (int)(rem / 60 % 60), .second = (int)(rem % 60) };
    c.weekday = (int)((days % 7 + 11) % 7); /* 1970-01-01 was a Thursday; 0 = Sunday */
    int64_t z = days + 719468, era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    c.day = (int)(doy - (153 * mp + 2) / 5 + 1);
    c.month = (int)(mp < 10 ? mp + 3 : mp - 9);
    c.year = (int)(yoe + era * 400 + (c.month <= 2));
    return c;
}

/* A register's value now. Lock held. */
static uint8_t read_register(struct vmm_rtc *rtc, uint8_t index)
{
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    struct civil c = utc(now.tv_sec);
    switch (index) {
    case REG_SECONDS: return bcd(c.second);
    case REG_MINUTES: return bcd(c.minute);
    case REG_HOURS: return bcd(c.hour);
    case REG_WEEKDAY: return bcd(c.weekday + 1);
    case REG_DAY: return bcd(c.day);
    case REG_MONTH: return bcd(c.month);
    case REG_YEAR: return bcd(c.year % 100);
    case REG_CENTURY: return bcd(c.year / 100);
    case REG_A: return A_DIVIDER_32K | (now.tv_nsec >= UIP_NS ? A_UPDATE_IN_PROGRESS : 0);
    case REG_C: return 0; /* no alarm, periodic or update interrupts */
    case REG_D: return D_VALID_RAM_TIME;
    default: return rtc->cmos[index];
    }
}

void vmm_rtc_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t size, bool is_write)
{
    struct vmm_rtc *rtc = opaque;
    pthread_mutex_lock(&rtc->lock);
    if (offset == 0) {
        /* Bit 7 of the index is the NMI mask: nothing here raises NMIs. */
        if (is_write)
            rtc->index = data[0] & INDEX_MASK;
        else
            memset(data, rtc->index, size);
    } else if (is_write) {
        /* The time is the host's: only plain CMOS bytes (and status B's
         * mode bits, which this clock keeps as it is) are guest state. */
        if (rtc->index > REG_D && rtc->index != REG_CENTURY)
            rtc->cmos[rtc->index] = data[0];
    } else {
        memset(data, read_register(rtc, rtc->index), size);
    }
    pthread_mutex_unlock(&rtc->lock);
}
