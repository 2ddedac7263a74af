/* QEMU's edu test device (1234:11e8): its BAR0 registers and their use,
 * for the lab's guest programs (shared/LAB.md has the device). Each
 * program maps BAR0 at `bar` its own way (sysfs resource0, VFIO). */
#ifndef LAB_EDU_H
#define LAB_EDU_H

#include <stdint.h>
#include <time.h>
#include <unistd.h>

#define REG_ID 0x00
#define REG_LIVENESS 0x04
#define REG_FACTORIAL 0x08
#define REG_STATUS 0x20
#define REG_IRQ_STATUS 0x24
#define REG_IRQ_RAISE 0x60
#define REG_IRQ_ACK 0x64
#define REG_DMA_SRC 0x80
#define REG_DMA_DST 0x88
#define REG_DMA_COUNT 0x90
#define REG_DMA_CMD 0x98
#define DMA_START 1
#define DMA_TO_RAM 2
#define DEVICE_BUFFER 0x40000
#define DMA_LIMIT (1ull << 28) /* edu's DMA addresses are 28-bit */
/* Less than edu's 4 KiB buffer: QEMU 7.2's range check is off by one and
 * aborts QEMU on a transfer of the whole buffer. */
#define DMA_BYTES 1024

static volatile uint8_t *bar;

static inline uint32_t rd(unsigned off) { return *(volatile uint32_t *)(bar + off); }
static inline void wr(unsigned off, uint32_t v) { *(volatile uint32_t *)(bar + off) = v; }
static inline void wr64(unsigned off, uint64_t v) { *(volatile uint64_t *)(bar + off) = v; }

static inline double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Polls for up to 5 seconds until `bits` of `reg` clear: 0, or -1. */
static inline int wait_clear(unsigned reg, uint32_t bits)
{
    for (double end = now() + 5; now() < end;) {
        if (!(rd(reg) & bits))
            return 0;
        usleep(100);
    }
    return -1;
}

/* One DMA of DMA_BYTES from `src` to `dst` (one of them DEVICE_BUFFER;
 * `cmd` DMA_TO_RAM when it is the source): 0 once done, -1 if it is not. */
static inline int edu_dma(uint64_t src, uint64_t dst, uint32_t cmd)
{
    wr64(REG_DMA_SRC, src);
    wr64(REG_DMA_DST, dst);
    wr64(REG_DMA_COUNT, DMA_BYTES);
    wr64(REG_DMA_CMD, DMA_START | cmd);
    return wait_clear(REG_DMA_CMD, DMA_START);
}

#endif
