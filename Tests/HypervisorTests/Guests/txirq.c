/* A virtio-net driver watching its transmit queue's interrupt: vector 0,
 * masked, so each interrupt the device raises is a pending bit in the PBA
 * that the guest counts and clears (unmasked for a moment: delivered to a
 * CPU whose interrupts stay off). 32 small frames go one at a time, each
 * waited for in the used ring; the device holds their interrupt (a NIC's
 * interrupt moderation), so fewer interrupts come than frames, and the
 * last one held must still come. Prints what it saw; the test reads it. */
#include "pci_guest.h"

enum { RX = 0, TX = 1, QUEUES = 2, QSIZE_N = 64, FRAMES = 32 };
enum { BAR_PBA = 0x6000 };
#define BUF 0x300000u

/* MSI-X on through its capability's message control. */
static int msix_enable(unsigned slot)
{
    for (unsigned cap = cfg_read(slot, 0x34) & 0xfc; cap; cap = cfg_read(slot, cap) >> 8 & 0xfc) {
        uint32_t head = cfg_read(slot, cap);
        if ((head & 0xff) == 0x11) {
            cfg_write(slot, cap, (head & 0x3fffffffu) | 1u << 31);
            return 1;
        }
    }
    return 0;
}

/* A raised interrupt is pending while the vector is masked: counted and
 * cleared by unmasking it for a moment. */
static unsigned take_interrupt(uint32_t bar)
{
    if (!(R32(bar + BAR_PBA) & 1))
        return 0;
    R32(bar + MSIX + 12) = 0;
    R32(bar + MSIX + 12) = 1;
    return 1;
}

void guest_main(void)
{
    const uint32_t bar = 0xc0000000u;
    unsigned slot = virtio_map(0x10411af4, bar);
    if (!slot) {
        print("txirq: no virtio-net\n");
        return;
    }
    if (!msix_enable(slot)) {
        print("txirq: no MSI-X capability\n");
        return;
    }
    R32(bar + MSIX) = 0xfee00000u;
    R32(bar + MSIX + 4) = 0;
    R32(bar + MSIX + 8) = 0x30;
    R32(bar + MSIX + 12) = 1;
    if (virtio_setup_queues(bar, 0, QUEUES, QSIZE_N) < 0) {
        print("txirq: FEATURES_OK refused\n");
        return;
    }
    R16(bar + COMMON + QSEL) = TX;
    R16(bar + COMMON + QVEC) = 0;
    R8(bar + COMMON + STATUS) = 1 | 2 | 4 | 8;

    /* A 12-byte header of zeros, then a 60-byte broadcast frame (0x88b5). */
    zero(BUF, 72);
    for (unsigned i = 0; i < 6; i++)
        R8(BUF + 12 + i) = 0xff;
    R8(BUF + 18) = 0x02;
    R16(BUF + 24) = 0xb588;
    desc_at(VQ_DESCS(TX), 0, BUF, 72, 0, 0);

    unsigned interrupts = 0, completed = 0, last = 0;
    for (uint16_t n = 1; n <= FRAMES; n++) {
        R16(VQ_AVAIL(TX) + 4 + 2 * ((n - 1) % QSIZE_N)) = 0;
        R16(VQ_AVAIL(TX) + 2) = n;
        R16(bar + NOTIFY + NOTIFY_MULTIPLIER * TX) = TX;
        for (int i = 0; i < 50000000 && R16(VQ_USED(TX) + 2) != n; i++)
            __asm__ volatile("pause");
        completed += R16(VQ_USED(TX) + 2) == n;
        last = take_interrupt(bar);
        interrupts += last;
    }
    print("frames completed "); print_hex(completed); print("\n");
    print("interrupts while sending "); print_hex(interrupts); print("\n");
    /* The last frame's interrupt, unless it came at once. */
    for (int i = 0; i < 200000000 && !last; i++) {
        last = take_interrupt(bar);
        __asm__ volatile("pause");
    }
    print(last ? "held interrupt delivered\n" : "txirq: the held interrupt never came\n");
}
