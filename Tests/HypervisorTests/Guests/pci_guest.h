/* What the C tiny guests share: the serial print, PCI configuration
 * through conf1, and the driver's side of this VMM's virtio-pci layout
 * (virtio_pci.c). 32-bit protected mode, paging off. */
#ifndef PCI_GUEST_H
#define PCI_GUEST_H

#include <stdint.h>

void poweroff(void);
static inline void print(const char *s) { __asm__ volatile("call puts" : : "S"(s) : "memory"); }

static inline void print_hex(uint32_t v)
{
    char buf[11] = "0x";
    for (int i = 0; i < 8; i++)
        buf[2 + i] = "0123456789abcdef"[(v >> (28 - 4 * i)) & 0xf];
    buf[10] = 0;
    print(buf);
}

static inline void outl(uint16_t port, uint32_t v) { __asm__ volatile("outl %0, %1" : : "a"(v), "Nd"(port)); }
static inline uint32_t inl(uint16_t port) { uint32_t v; __asm__ volatile("inl %1, %0" : "=a"(v) : "Nd"(port)); return v; }

static inline uint32_t cfg_read(unsigned slot, unsigned reg)
{
    outl(0xcf8, 0x80000000u | slot << 11 | (reg & 0xfc));
    return inl(0xcfc);
}

static inline void cfg_write(unsigned slot, unsigned reg, uint32_t v)
{
    outl(0xcf8, 0x80000000u | slot << 11 | (reg & 0xfc));
    outl(0xcfc, v);
}

#define R8(a) (*(volatile uint8_t *)(uintptr_t)(a))
#define R16(a) (*(volatile uint16_t *)(uintptr_t)(a))
#define R32(a) (*(volatile uint32_t *)(uintptr_t)(a))

/* virtio-pci BAR layout and common-config offsets (virtio_pci.c). */
enum { COMMON = 0x0, DEVICE_CFG = 0x2000, NOTIFY = 0x3000, MSIX = 0x4000, NOTIFY_MULTIPLIER = 4 };
enum { DFSEL = 0x00, DF = 0x04, GFSEL = 0x08, GF = 0x0c, MSIX_CFG = 0x10, STATUS = 0x14, QSEL = 0x16,
       QSIZE = 0x18, QVEC = 0x1a, QEN = 0x1c, QDESC = 0x20, QDRV = 0x28, QDEV = 0x30 };
enum { NEEDS_RESET = 0x40 };

/* The slot of the first function with this vendor:device id, or 0. */
static inline unsigned find(uint32_t id)
{
    for (unsigned slot = 1; slot < 32; slot++)
        if (cfg_read(slot, 0) == id)
            return slot;
    return 0;
}

static inline void zero(uint32_t at, uint32_t len)
{
    for (uint32_t i = 0; i < len; i += 4)
        R32(at + i) = 0;
}

/* Descriptor `i` of the table at `table`. */
static inline void desc_at(uint32_t table, unsigned i, uint32_t addr, uint32_t len, uint16_t flags, uint16_t next)
{
    R32(table + 16 * i) = addr;
    R32(table + 16 * i + 4) = 0;
    R32(table + 16 * i + 8) = len;
    R16(table + 16 * i + 12) = flags;
    R16(table + 16 * i + 14) = next;
}

/* A virtio-pci device reset: status 0, read back 0 once the device let go. */
static inline void virtio_reset(uint32_t bar)
{
    R8(bar + COMMON + STATUS) = 0;
    for (int i = 0; i < 1000000 && R8(bar + COMMON + STATUS); i++)
        __asm__ volatile("pause");
}

/* The driver side of a device setup: reset, VIRTIO_F_VERSION_1 only, queue
 * 0 live with `size` entries at the given rings, ending in DRIVER_OK; -1 if
 * the device refuses FEATURES_OK. */
static inline int virtio_start_queue0(uint32_t bar, uint16_t size, uint32_t desc, uint32_t avail, uint32_t used)
{
    virtio_reset(bar);
    R8(bar + COMMON + STATUS) = 1 | 2;
    R32(bar + COMMON + GFSEL) = 1;
    R32(bar + COMMON + GF) = 1;
    R8(bar + COMMON + STATUS) = 1 | 2 | 8;
    if (!(R8(bar + COMMON + STATUS) & 8))
        return -1;
    R16(bar + COMMON + QSEL) = 0;
    R16(bar + COMMON + QSIZE) = size;
    R16(bar + COMMON + QVEC) = 0xffff;
    R32(bar + COMMON + QDESC) = desc; R32(bar + COMMON + QDESC + 4) = 0;
    R32(bar + COMMON + QDRV) = avail; R32(bar + COMMON + QDRV + 4) = 0;
    R32(bar + COMMON + QDEV) = used; R32(bar + COMMON + QDEV + 4) = 0;
    R16(bar + COMMON + QEN) = 1;
    R8(bar + COMMON + STATUS) = 1 | 2 | 4 | 8;
    return 0;
}

/* Queue q's rings for the multi-queue guests: descriptors, driver and
 * device areas a page apart, from 0x200000. */
#define VQ_RING(q) (0x200000u + 0x3000u * (q))
#define VQ_DESCS(q) VQ_RING(q)
#define VQ_AVAIL(q) (VQ_RING(q) + 0x1000u)
#define VQ_USED(q) (VQ_RING(q) + 0x2000u)

/* The first function with this vendor:device id, its BAR 0 at `bar` and
 * memory decoding on: its slot, or 0 without one. */
static inline unsigned virtio_map(uint32_t id, uint32_t bar)
{
    unsigned slot = find(id);
    if (slot) {
        cfg_write(slot, 0x10, bar);
        cfg_write(slot, 0x14, 0);
        cfg_write(slot, 0x04, 0x2);
    }
    return slot;
}

/* A driver's setup with `queues` queues of `size` entries at VQ_RING, no
 * vectors: reset, VIRTIO_F_VERSION_1 plus `features` (the low word),
 * rings zeroed, queues enabled, not yet DRIVER_OK (the caller may still
 * give queues vectors); -1 if the device refuses FEATURES_OK. */
static inline int virtio_setup_queues(uint32_t bar, uint32_t features, unsigned queues, uint16_t size)
{
    virtio_reset(bar);
    R8(bar + COMMON + STATUS) = 1 | 2;
    R32(bar + COMMON + GFSEL) = 0;
    R32(bar + COMMON + GF) = features;
    R32(bar + COMMON + GFSEL) = 1;
    R32(bar + COMMON + GF) = 1;
    R8(bar + COMMON + STATUS) = 1 | 2 | 8;
    if (!(R8(bar + COMMON + STATUS) & 8))
        return -1;
    for (unsigned q = 0; q < queues; q++) {
        zero(VQ_RING(q), 0x3000);
        R16(bar + COMMON + QSEL) = (uint16_t)q;
        R16(bar + COMMON + QSIZE) = size;
        R16(bar + COMMON + QVEC) = 0xffff;
        R32(bar + COMMON + QDESC) = VQ_DESCS(q); R32(bar + COMMON + QDESC + 4) = 0;
        R32(bar + COMMON + QDRV) = VQ_AVAIL(q); R32(bar + COMMON + QDRV + 4) = 0;
        R32(bar + COMMON + QDEV) = VQ_USED(q); R32(bar + COMMON + QDEV + 4) = 0;
        R16(bar + COMMON + QEN) = 1;
    }
    return 0;
}

/* virtio_setup_queues, then DRIVER_OK. */
static inline int virtio_start_queues(uint32_t bar, uint32_t features, unsigned queues, uint16_t size)
{
    if (virtio_setup_queues(bar, features, queues, size) < 0)
        return -1;
    R8(bar + COMMON + STATUS) = 1 | 2 | 4 | 8;
    return 0;
}

static inline void spin_until_status(uint32_t bar, uint8_t bit)
{
    for (int i = 0; i < 50000000 && !(R8(bar + COMMON + STATUS) & bit); i++)
        __asm__ volatile("pause");
}

/* virtio-blk on queue 0 at VQ_RING(0) with 8 entries, one request at a
 * time: its header at BLK_REQ, `len` bytes of data at BLK_DATA
 * (device-writable for a read, type 0), its status at BLK_STATUS; polls
 * the used ring. `*avail` counts the requests made. Returns the status,
 * 0xee when the device never answers. */
#define BLK_REQ 0x300000u
#define BLK_DATA 0x301000u
#define BLK_STATUS 0x303000u
static inline int blk_request(uint32_t bar, uint16_t *avail, uint32_t type, uint32_t sector, uint32_t len)
{
    R32(BLK_REQ) = type; R32(BLK_REQ + 4) = 0; R32(BLK_REQ + 8) = sector; R32(BLK_REQ + 12) = 0;
    R8(BLK_STATUS) = 0xff;
    desc_at(VQ_DESCS(0), 0, BLK_REQ, 16, 1, 1);
    desc_at(VQ_DESCS(0), 1, BLK_DATA, len, type == 0 ? 1 | 2 : 1, 2);
    desc_at(VQ_DESCS(0), 2, BLK_STATUS, 1, 2, 0);
    R16(VQ_AVAIL(0) + 4 + 2 * (*avail % 8)) = 0;
    R16(VQ_AVAIL(0) + 2) = ++*avail;
    R16(bar + NOTIFY) = 0;
    for (int i = 0; i < 400000000 && R16(VQ_USED(0) + 2) != *avail; i++)
        __asm__ volatile("pause");
    return R16(VQ_USED(0) + 2) == *avail ? R8(BLK_STATUS) : 0xee;
}

#endif
