/* A virtio-net driver with mergeable receive buffers (VIRTIO_NET_F_MRG_RXBUF)
 * and one without, receiving frames the test writes into the tap (an
 * ethertype 0x88b5 frame whose payload byte i is i & 0xff):
 * 1. eight 256-byte buffers; a 1,000-byte frame must come in four of them,
 *    published together, the first header saying 4;
 * 2. a 100-byte frame must wait while fewer buffers than a full frame's
 *    worth are left, and come in one buffer once four more are given;
 * 3. after a reset without the feature, a receive chain of 300 pieces (an
 *    indirect table) is returned empty, and the frame comes in one buffer.
 * Prints what it saw; the test reads the lines. */
#include "pci_guest.h"

enum { RX = 0, TX = 1, CTRL = 2, QUEUES = 3, QSIZE_N = 8, MRG_RXBUF = 15, INDIRECT_DESC = 28 };
#define TABLE 0x380000u /* an indirect table of 300 eight-byte pieces */
#define PIECES 0x390000u
#define BUFS 0x300000u
#define BUF(i) (BUFS + 0x100u * (i))

static uint16_t avail_idx, used_seen;

static void give(uint32_t bar, unsigned head, uint32_t len)
{
    desc_at(VQ_DESCS(RX), head, BUF(head), len, 2, 0);
    R16(VQ_AVAIL(RX) + 4 + 2 * (avail_idx % QSIZE_N)) = (uint16_t)head;
    R16(VQ_AVAIL(RX) + 2) = ++avail_idx;
    R16(bar + NOTIFY + NOTIFY_MULTIPLIER * RX) = RX;
}

/* Spins until `count` more used entries are published, or gives up. */
static int wait_used(unsigned count)
{
    for (int i = 0; i < 100000000; i++)
        if ((uint16_t)(R16(VQ_USED(RX) + 2) - used_seen) >= count)
            return 1;
    return 0;
}

static uint32_t used_id(unsigned n) { return R32(VQ_USED(RX) + 4 + 8 * (n % QSIZE_N)); }
static uint32_t used_len(unsigned n) { return R32(VQ_USED(RX) + 8 + 8 * (n % QSIZE_N)); }

/* The frame spread over the used entries from used_seen on: its header's
 * num_buffers, each length, and whether its bytes are the test's. */
static void report(const char *what, unsigned entries)
{
    print(what);
    print(": num_buffers ");
    print_hex(R16(BUF(used_id(used_seen)) + 10));
    print(" lengths");
    uint32_t at = 0, ok = 1;
    for (unsigned e = 0; e < entries; e++) {
        uint32_t id = used_id(used_seen + e), len = used_len(used_seen + e);
        print(" ");
        print_hex(len);
        for (uint32_t i = 0; i < len; i++, at++) {
            /* Frame byte f = at - 12: 14 bytes of Ethernet header, then the payload. */
            if (at == 12 + 12)
                ok &= R8(BUF(id) + i) == 0x88;
            else if (at >= 12 + 14)
                ok &= R8(BUF(id) + i) == (uint8_t)((at - 26) & 0xff);
        }
    }
    print(ok ? " intact\n" : " corrupted\n");
    used_seen = (uint16_t)(used_seen + entries);
}

void guest_main(void)
{
    const uint32_t bar = 0xc0000000u;
    if (!virtio_map(0x10411af4, bar)) {
        print("mrgrx: no virtio-net\n");
        return;
    }
    R32(bar + COMMON + DFSEL) = 0;
    print(R32(bar + COMMON + DF) >> MRG_RXBUF & 1 ? "mergeable buffers offered\n" : "mrgrx: no MRG_RXBUF offered\n");
    if (virtio_start_queues(bar, 1u << MRG_RXBUF, QUEUES, QSIZE_N) < 0) {
        print("mrgrx: FEATURES_OK refused\n");
        return;
    }
    for (unsigned i = 0; i < 8; i++)
        give(bar, i, 0x100);
    print("mrgrx ready for two frames\n");
    if (!wait_used(4)) {
        print("mrgrx: no first frame\n");
        return;
    }
    report("first frame", 4);
    /* 1,024 bytes left staged: less than a 1,500-byte MTU's frame. */
    for (int i = 0; i < 2000000; i++)
        __asm__ volatile("pause");
    print(R16(VQ_USED(RX) + 2) == used_seen ? "second frame waits for buffers\n" : "mrgrx: second frame came early\n");
    for (unsigned i = 0; i < 4; i++)
        give(bar, i, 0x100);
    if (!wait_used(1)) {
        print("mrgrx: no second frame\n");
        return;
    }
    report("second frame", 1);

    avail_idx = used_seen = 0;
    if (virtio_start_queues(bar, 1u << INDIRECT_DESC, QUEUES, QSIZE_N) < 0) {
        print("mrgrx: FEATURES_OK refused without the feature\n");
        return;
    }
    for (unsigned i = 0; i < 300; i++)
        desc_at(TABLE, i, PIECES + 8 * i, 8, i < 299 ? 2 | 1 : 2, (uint16_t)(i + 1));
    desc_at(VQ_DESCS(RX), 0, TABLE, 300 * 16, 4, 0);
    R16(VQ_AVAIL(RX) + 4) = 0;
    R16(VQ_AVAIL(RX) + 2) = ++avail_idx;
    give(bar, 1, 0x800);
    print("mrgrx ready for one frame\n");
    if (!wait_used(2)) {
        print("mrgrx: no frame without the feature\n");
        return;
    }
    print(used_id(0) == 0 && used_len(0) == 0 ? "a receive chain of 300 pieces returned empty\n"
                                               : "mrgrx: the 300-piece chain was used\n");
    used_seen = 1;
    report("without the feature", 1);
}
