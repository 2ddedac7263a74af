/* A hostile guest for the PCI and virtio paths, in 32-bit protected mode
 * with paging off (so BARs go below 4 GiB). It writes garbage into config
 * space, puts a BAR over RAM and over another device's BAR, points MSI-X
 * vectors nowhere, and feeds virtio-rng a descriptor loop; the device must
 * report DEVICE_NEEDS_RESET, and after a reset it must work as usual.
 * Prints what it saw; the test reads the lines. */
#include "pci_guest.h"

/* Guest memory for the rings and the buffer. */
#define DESC 0x200000u
#define AVAIL 0x201000u
#define USED 0x202000u
#define BUF 0x300000u

static void desc(unsigned i, uint32_t addr, uint32_t len, uint16_t flags, uint16_t next)
{
    desc_at(DESC, i, addr, len, flags, next);
}

/* One queue of 8 at the rings above, ending in DRIVER_OK. */
static int start(uint32_t bar)
{
    return virtio_start_queue0(bar, 8, DESC, AVAIL, USED);
}

static void kick(uint32_t bar, unsigned head)
{
    R16(AVAIL + 4) = (uint16_t)head;
    R16(AVAIL + 2) = 1;
    R16(bar + NOTIFY) = 0;
}

void guest_main(void)
{
    unsigned rng = find(0x10441af4), other = find(0x10431af4);
    if (!rng || !other) {
        print("hostile: no virtio-rng or virtio-console\n");
        return;
    }
    const uint32_t rng_bar = 0xc0010000u, other_bar = 0xc0000000u;

    /* All-ones into every dword of the header and capabilities: BAR sizing,
     * read-only identity, MSI-X enable and function mask. */
    for (unsigned reg = 0; reg < 0x100; reg += 4)
        cfg_write(rng, reg, 0xffffffffu);
    print("vendor after garbage "); print_hex(cfg_read(rng, 0)); print("\n");
    print("bar0 sized "); print_hex(cfg_read(rng, 0x10)); print("\n");

    /* The other device decodes at its place; rng's BAR goes over RAM (the
     * guest's own code at 1 MiB), then over the other device's BAR. */
    cfg_write(other, 0x10, other_bar); cfg_write(other, 0x14, 0);
    cfg_write(other, 0x04, 0x2);
    cfg_write(rng, 0x10, 0x100000); cfg_write(rng, 0x14, 0);
    cfg_write(rng, 0x04, 0x2);
    print("still running over RAM\n");
    cfg_write(rng, 0x10, other_bar);
    print("other device status "); print_hex(R8(other_bar + COMMON + STATUS)); print("\n");
    cfg_write(rng, 0x10, rng_bar);

    /* MSI-X vectors at garbage addresses, unmasked, MSI-X on. */
    for (unsigned v = 0; v < 2; v++) {
        R32(rng_bar + MSIX + 16 * v) = 0xdead0000u;
        R32(rng_bar + MSIX + 16 * v + 4) = 0xffffffffu;
        R32(rng_bar + MSIX + 16 * v + 8) = 0x30;
        R32(rng_bar + MSIX + 16 * v + 12) = 0;
    }
    /* Out-of-range queue selects and notifies. */
    R16(rng_bar + COMMON + QSEL) = 99;
    R16(rng_bar + COMMON + QSIZE) = 4;
    R32(rng_bar + NOTIFY + 0x400) = 7;

    /* A descriptor loop. */
    zero(DESC, 0x3000);
    desc(0, BUF, 64, 1 | 2, 1);
    desc(1, BUF, 64, 1 | 2, 0);
    if (start(rng_bar) < 0) {
        print("hostile: FEATURES_OK refused\n");
        return;
    }
    R16(rng_bar + COMMON + MSIX_CFG) = 0;
    kick(rng_bar, 0);
    spin_until_status(rng_bar, NEEDS_RESET);
    print(R8(rng_bar + COMMON + STATUS) & 0x40 ? "device needs reset\n" : "hostile: no NEEDS_RESET\n");

    /* Reset, then a well-formed request. */
    zero(DESC, 0x3000);
    zero(BUF, 64);
    desc(0, BUF, 64, 2, 0);
    if (start(rng_bar) < 0) {
        print("hostile: FEATURES_OK refused after reset\n");
        return;
    }
    print("status after reset "); print_hex(R8(rng_bar + COMMON + STATUS)); print("\n");
    kick(rng_bar, 0);
    for (int i = 0; i < 50000000 && R16(USED + 2) != 1; i++)
        __asm__ volatile("pause");
    uint32_t nonzero = 0;
    for (unsigned b = 0; b < 64; b += 4)
        nonzero |= R32(BUF + b);
    print(R16(USED + 2) == 1 && R32(USED + 8) == 64 && nonzero ? "rng ok 64 bytes\n" : "hostile: rng did not answer\n");
}
