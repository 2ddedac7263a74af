/* A long hostile run against every virtio device's thread: a thousand
 * rounds of random descriptor tables (addresses in a scratch area, past
 * RAM or anywhere, random lengths, flags and next links), random avail
 * indexes and kicks, device resets, decoding switched off and on, MSI-X
 * entries written with garbage. The device threads must live through it
 * under their seccomp filters; at the end a well-formed virtio-rng request
 * must still be answered. Prints "churn done" and what the last request
 * gave. */
#include "pci_guest.h"

/* Rings and the scratch area devices may write: above the guest's code. */
#define DESC 0x1000000u
#define AVAIL 0x1001000u
#define USED 0x1002000u
#define SCRATCH 0x1100000u
#define SCRATCH_LEN 0x800000u
#define ROUNDS 1000u

static uint32_t state = 0x9e3779b9u;

static uint32_t next_random(void)
{
    state ^= state << 13;
    state ^= state >> 17;
    state ^= state << 5;
    return state;
}

/* An address a device may be handed: mostly scratch, sometimes past RAM
 * or anywhere at all. */
static uint32_t any_address(void)
{
    switch (next_random() % 4) {
    case 0: return next_random();
    case 1: return 0xf0000000u + (next_random() & 0xffffu);
    default: return SCRATCH + (next_random() % SCRATCH_LEN);
    }
}

static void round_on(unsigned slot, uint32_t bar)
{
    uint16_t size = (uint16_t)(1u << (1 + next_random() % 7));
    zero(DESC, 0x3000);
    if (virtio_start_queue0(bar, size, DESC, AVAIL, USED) < 0)
        return;
    for (unsigned i = 0; i < size; i++)
        desc_at(DESC, i, any_address(), next_random() % 0x2000u, (uint16_t)(next_random() & 7),
                (uint16_t)(next_random() % (size + 2u)));
    unsigned heads = 1 + next_random() % size;
    for (unsigned i = 0; i < heads; i++)
        R16(AVAIL + 4 + 2 * i) = (uint16_t)(next_random() % (size + 2u));
    R16(AVAIL + 2) = (uint16_t)(next_random() & 1 ? heads : next_random());
    R16(bar + NOTIFY) = 0;
    if (next_random() % 8 == 0)
        R32(bar + NOTIFY + (next_random() & 0xffcu)) = next_random();
    if (next_random() % 8 == 0) {
        unsigned v = next_random() % 4;
        R32(bar + MSIX + 16 * v) = next_random();
        R32(bar + MSIX + 16 * v + 8) = next_random();
        R32(bar + MSIX + 16 * v + 12) = next_random() & 1;
    }
    if (next_random() % 16 == 0) {
        /* Decoding off and on again: the BAR leaves the bus and comes back. */
        cfg_write(slot, 0x04, 0);
        cfg_write(slot, 0x04, 0x6);
    }
    for (int i = 0; i < 200; i++)
        __asm__ volatile("pause");
}

void guest_main(void)
{
    static const uint32_t ids[] = { 0x10441af4u, 0x10431af4u, 0x10421af4u }; /* rng, console, blk */
    unsigned slots[3], count = 0;
    uint32_t bars[3];
    for (unsigned d = 0; d < 3; d++) {
        unsigned slot = find(ids[d]);
        if (!slot)
            continue;
        bars[count] = 0xc0000000u + 0x10000u * count;
        cfg_write(slot, 0x10, bars[count]);
        cfg_write(slot, 0x14, 0);
        cfg_write(slot, 0x04, 0x6);
        slots[count++] = slot;
    }
    if (!count) {
        print("churn: no virtio device\n");
        return;
    }
    for (unsigned r = 0; r < ROUNDS; r++) {
        unsigned d = next_random() % count;
        round_on(slots[d], bars[d]);
    }
    for (unsigned d = 0; d < count; d++)
        virtio_reset(bars[d]);
    print("churn done\n");

    /* virtio-rng (the first found) still serves a well-formed request. */
    if (cfg_read(slots[0], 0) != ids[0])
        return;
    zero(DESC, 0x3000);
    zero(SCRATCH, 64);
    desc_at(DESC, 0, SCRATCH, 64, 2, 0);
    if (virtio_start_queue0(bars[0], 8, DESC, AVAIL, USED) < 0) {
        print("churn: FEATURES_OK refused at the end\n");
        return;
    }
    R16(AVAIL + 4) = 0;
    R16(AVAIL + 2) = 1;
    R16(bars[0] + NOTIFY) = 0;
    for (int i = 0; i < 50000000 && R16(USED + 2) != 1; i++)
        __asm__ volatile("pause");
    uint32_t nonzero = 0;
    for (unsigned b = 0; b < 64; b += 4)
        nonzero |= R32(SCRATCH + b);
    print(R16(USED + 2) == 1 && R32(USED + 8) == 64 && nonzero ? "rng ok after churn\n" : "churn: rng did not answer\n");
}
