/* A hostile guest for virtio-net: frames whose virtio-net header the tap
 * refuses, a frame larger than any Ethernet allows, chains too short for a
 * header, control commands that make no sense, a receive buffer the device
 * may not write; then a descriptor loop, which must stop the device until a
 * reset, after which a well-formed frame goes out. The VMM must live
 * through all of it. Prints what it saw; the test reads the lines. */
#include "pci_guest.h"

enum { RX = 0, TX = 1, CTRL = 2, QUEUES = 3, QSIZE_N = 8 };
#define DESCS(q) VQ_DESCS(q)
#define AVAIL(q) VQ_AVAIL(q)
#define USED(q) VQ_USED(q)
#define BUF 0x300000u
#define BIG 0x400000u /* 128 KiB of frame */

static uint16_t avail_idx[QUEUES];

/* Features: VERSION_1 and CTRL_VQ, nothing the guest would have to honour. */
static int start(uint32_t bar)
{
    for (unsigned q = 0; q < QUEUES; q++)
        avail_idx[q] = 0;
    return virtio_start_queues(bar, 1u << 17, QUEUES, QSIZE_N);
}

/* Offers chain `head` on queue `q` and waits until the device returns it. */
static int offer(uint32_t bar, unsigned q, unsigned head)
{
    R16(AVAIL(q) + 4 + 2 * (avail_idx[q] % QSIZE_N)) = (uint16_t)head;
    avail_idx[q]++;
    R16(AVAIL(q) + 2) = avail_idx[q];
    R16(bar + NOTIFY + NOTIFY_MULTIPLIER * q) = (uint16_t)q;
    for (int i = 0; i < 50000000 && R16(USED(q) + 2) != avail_idx[q]; i++)
        __asm__ volatile("pause");
    return R16(USED(q) + 2) == avail_idx[q];
}

/* A 12-byte virtio-net header then a 60-byte broadcast frame at BUF. */
static void frame(uint8_t flags, uint8_t gso_type, uint16_t hdr_len, uint16_t csum_start)
{
    zero(BUF, 128);
    R8(BUF) = flags;
    R8(BUF + 1) = gso_type;
    R16(BUF + 2) = hdr_len;
    R16(BUF + 4) = 1400; /* gso_size */
    R16(BUF + 6) = csum_start;
    R16(BUF + 8) = 6;
    for (unsigned i = 0; i < 12; i++)
        R8(BUF + 12 + i) = i < 6 ? 0xff : 0x02;
    R16(BUF + 24) = 0x0008; /* IPv4, big-endian */
}

static uint8_t control(uint32_t bar, uint8_t class, uint8_t cmd, uint16_t value)
{
    R8(BUF + 0x100) = class;
    R8(BUF + 0x101) = cmd;
    R16(BUF + 0x102) = value;
    R8(BUF + 0x200) = 0xaa;
    desc_at(DESCS(CTRL), 0, BUF + 0x100, 2, 1, 1);
    desc_at(DESCS(CTRL), 1, BUF + 0x102, 2, 1, 2);
    desc_at(DESCS(CTRL), 2, BUF + 0x200, 1, 2, 0);
    return offer(bar, CTRL, 0) ? R8(BUF + 0x200) : 0xee;
}

void guest_main(void)
{
    const uint32_t bar = 0xc0000000u;
    if (!virtio_map(0x10411af4, bar)) {
        print("hostile-net: no virtio-net\n");
        return;
    }
    if (start(bar) < 0) {
        print("hostile-net: FEATURES_OK refused\n");
        return;
    }
    print("mac "); print_hex(R32(bar + DEVICE_CFG)); print(" status "); print_hex(R16(bar + DEVICE_CFG + 6)); print("\n");

    /* Headers the tap refuses: an unknown GSO type, a checksum start past the frame. */
    frame(0, 0xff, 0, 0);
    desc_at(DESCS(TX), 0, BUF, 72, 0, 0);
    int bad_gso = offer(bar, TX, 0);
    frame(1, 0, 0, 0xfff0);
    int bad_csum = offer(bar, TX, 0);
    /* 128 KiB in one frame; and a chain shorter than the header. */
    frame(0, 0, 0, 0);
    for (uint32_t i = 0; i < 0x20000; i += 4)
        R32(BIG + i) = 0x5a5a5a5a;
    desc_at(DESCS(TX), 0, BUF, 12, 1, 1);
    desc_at(DESCS(TX), 1, BIG, 0x20000, 0, 0);
    int oversize = offer(bar, TX, 0);
    desc_at(DESCS(TX), 0, BUF, 5, 0, 0);
    int short_chain = offer(bar, TX, 0);
    print(bad_gso && bad_csum && oversize && short_chain ? "refused frames returned\n" : "hostile-net: a frame was kept\n");

    /* Control commands: unknown class, zero and too many queue pairs, then a good one. */
    print("ctrl unknown "); print_hex(control(bar, 99, 0, 0));
    print(" pairs0 "); print_hex(control(bar, 4, 0, 0));
    print(" pairs9 "); print_hex(control(bar, 4, 0, 9));
    print(" pairs1 "); print_hex(control(bar, 4, 0, 1)); print("\n");

    /* A receive "buffer" the device may only read: given back empty. */
    desc_at(DESCS(RX), 0, BUF, 64, 0, 0);
    print(offer(bar, RX, 0) && R32(USED(RX) + 8) == 0 ? "read-only receive buffer returned empty\n"
                                                       : "hostile-net: read-only receive buffer mishandled\n");

    /* A descriptor loop on transmit: the device stops until reset. */
    desc_at(DESCS(TX), 0, BUF, 72, 1, 1);
    desc_at(DESCS(TX), 1, BUF, 72, 1, 0);
    R16(AVAIL(TX) + 4 + 2 * (avail_idx[TX] % QSIZE_N)) = 0;
    R16(AVAIL(TX) + 2) = ++avail_idx[TX];
    R16(bar + NOTIFY + NOTIFY_MULTIPLIER * TX) = TX;
    spin_until_status(bar, NEEDS_RESET);
    print(R8(bar + COMMON + STATUS) & NEEDS_RESET ? "device needs reset\n" : "hostile-net: no NEEDS_RESET\n");

    if (start(bar) < 0) {
        print("hostile-net: FEATURES_OK refused after reset\n");
        return;
    }
    frame(0, 0, 0, 0);
    desc_at(DESCS(TX), 0, BUF, 72, 0, 0);
    print(offer(bar, TX, 0) ? "frame sent after reset\n" : "hostile-net: no transmit after reset\n");
}
