/* Write-zeroes and discard on this VMM's virtio-blk: 8-sector ranges are
 * written with a pattern, then zeroed (with and without "may unmap") or
 * discarded, and read back; then a segment with a flag the spec does not
 * define. Prints each status and whether the read-back holds only zeroes;
 * the test (VirtioHostTests) runs it on images in file systems with and
 * without FALLOC_FL_ZERO_RANGE and reads the image after. */
#include "pci_guest.h"

enum { T_IN = 0, T_OUT = 1, T_DISCARD = 11, T_WRITE_ZEROES = 13 };
enum { F_DISCARD = 13, F_WRITE_ZEROES = 14 };
#define RANGE_BYTES 4096u

static uint32_t bar;
static uint16_t avail;

static void fill(uint8_t v)
{
    for (uint32_t i = 0; i < RANGE_BYTES; i++)
        R8(BLK_DATA + i) = v;
}

static int only_zeroes(void)
{
    for (uint32_t i = 0; i < RANGE_BYTES; i++)
        if (R8(BLK_DATA + i))
            return 0;
    return 1;
}

/* A discard or write-zeroes request of one segment: 8 sectors at `sector`. */
static int segment(uint32_t type, uint32_t sector, uint32_t flags)
{
    R32(BLK_DATA) = sector; R32(BLK_DATA + 4) = 0;
    R32(BLK_DATA + 8) = RANGE_BYTES / 512; R32(BLK_DATA + 12) = flags;
    return blk_request(bar, &avail, type, 0, 16);
}

static void check(const char *name, uint32_t type, uint32_t sector, uint32_t flags)
{
    fill(0xab);
    int w = blk_request(bar, &avail, T_OUT, sector, RANGE_BYTES);
    int s = segment(type, sector, flags);
    fill(0x55);
    int r = blk_request(bar, &avail, T_IN, sector, RANGE_BYTES);
    print(name); print(": write "); print_hex((uint32_t)w); print(" status "); print_hex((uint32_t)s);
    print(" read "); print_hex((uint32_t)r); print(only_zeroes() ? " zeroes\n" : " not zeroes\n");
}

void guest_main(void)
{
    bar = 0xc0000000u;
    if (!virtio_map(0x10421af4, bar)) {
        print("blkzero: no virtio-blk\n");
        return;
    }
    if (virtio_start_queues(bar, 1u << F_DISCARD | 1u << F_WRITE_ZEROES, 1, 8) < 0) {
        print("blkzero: FEATURES_OK refused\n");
        return;
    }
    check("write-zeroes", T_WRITE_ZEROES, 8, 0);
    check("write-zeroes unmap", T_WRITE_ZEROES, 16, 1);
    check("discard", T_DISCARD, 24, 0);
    print("unknown flag: status "); print_hex((uint32_t)segment(T_WRITE_ZEROES, 32, 2)); print("\n");
    virtio_reset(bar);
    print("blkzero done\n");
}
