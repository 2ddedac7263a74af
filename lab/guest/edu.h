/* QEMU's edu test device (1234:11e8): its BAR0 registers, for the lab's
 * guest programs (shared/LAB.md has the device). */
#ifndef LAB_EDU_H
#define LAB_EDU_H

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

#endif
