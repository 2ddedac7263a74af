/* A virtio-iommu driver with a virtio-rng behind it (`--rng iommu=on`),
 * 64 MiB of RAM:
 * 1. the IOMMU's features and config, PROBE's reserved MSI region;
 * 2. the requests a careless or hostile driver makes, each refused with
 *    its status: MAP before ATTACH, overlapping, outside RAM, misaligned,
 *    MMIO, bypass, an unknown endpoint, an UNMAP that would split;
 * 3. the rng's rings and buffers at IOVAs: filled through the mappings,
 *    a buffer across two mappings whose RAM is not contiguous filled in
 *    both pieces and nowhere else;
 * 4. a buffer at an unmapped IOVA: the rng stops (NEEDS_RESET) and the
 *    fault arrives on the event queue;
 * 5. mappings until refused (no more than RAM's worth), all unmapped at
 *    once, mapped again; a reset of the IOMMU detaches every endpoint.
 * Prints what it saw; the test reads the lines. */
#include "pci_guest.h"

enum { T_ATTACH = 1, T_DETACH = 2, T_MAP = 3, T_UNMAP = 4, T_PROBE = 5 };
enum { S_OK = 0, S_INVAL = 4, S_RANGE = 5, S_NOENT = 6, S_NOMEM = 8 };
enum { F_READ = 1, F_WRITE = 2, F_MMIO = 4 };
enum { REQ = 0, EVT = 1, QN = 8 };

#define IOMMU_BAR 0xc0000000u
#define RNG_BAR 0xc0010000u
#define REQUEST 0x300000u /* a request, its tail (and PROBE's properties) after */
#define EVENTS 0x310000u  /* the event queue's buffers */
#define RNG_RAM 0x400000u /* the rng's rings and first buffer, in guest RAM */
#define RNG_IOVA 0x10000000u

static uint16_t req_avail, req_used, rng_avail, rng_used;
static uint32_t rng_ep;

static void put64(uint32_t at, uint64_t v) { R32(at) = (uint32_t)v; R32(at + 4) = (uint32_t)(v >> 32); }

/* Sends the request of `len` bytes at REQUEST with `writable` bytes for the
 * answer after it; returns the status, the tail's first byte. */
static uint8_t send(uint32_t len, uint32_t writable)
{
    desc_at(VQ_DESCS(REQ), 0, REQUEST, len, 1, 1);
    desc_at(VQ_DESCS(REQ), 1, REQUEST + len, writable, 2, 0);
    R8(REQUEST + len + writable - 4) = 0xff;
    R16(VQ_AVAIL(REQ) + 4 + 2 * (req_avail % QN)) = 0;
    R16(VQ_AVAIL(REQ) + 2) = ++req_avail;
    R16(IOMMU_BAR + NOTIFY + NOTIFY_MULTIPLIER * REQ) = REQ;
    for (int i = 0; i < 100000000 && R16(VQ_USED(REQ) + 2) == req_used; i++)
        __asm__ volatile("pause");
    req_used++;
    return R8(REQUEST + len + writable - 4);
}

static uint8_t attach(uint32_t domain, uint32_t endpoint, uint32_t flags)
{
    zero(REQUEST, 0x100);
    R8(REQUEST) = T_ATTACH;
    R32(REQUEST + 4) = domain;
    R32(REQUEST + 8) = endpoint;
    R32(REQUEST + 12) = flags;
    return send(20, 4);
}

static uint8_t detach(uint32_t domain, uint32_t endpoint)
{
    zero(REQUEST, 0x100);
    R8(REQUEST) = T_DETACH;
    R32(REQUEST + 4) = domain;
    R32(REQUEST + 8) = endpoint;
    return send(20, 4);
}

static uint8_t map(uint32_t domain, uint64_t first, uint64_t last, uint64_t phys, uint32_t flags)
{
    zero(REQUEST, 0x100);
    R8(REQUEST) = T_MAP;
    R32(REQUEST + 4) = domain;
    put64(REQUEST + 8, first);
    put64(REQUEST + 16, last);
    put64(REQUEST + 24, phys);
    R32(REQUEST + 32) = flags;
    return send(36, 4);
}

static uint8_t unmap(uint32_t domain, uint64_t first, uint64_t last)
{
    zero(REQUEST, 0x100);
    R8(REQUEST) = T_UNMAP;
    R32(REQUEST + 4) = domain;
    put64(REQUEST + 8, first);
    put64(REQUEST + 16, last);
    return send(28, 4);
}

static void check(const char *what, uint8_t status, uint8_t expected)
{
    print(what);
    print(status == expected ? ": as expected " : ": UNEXPECTED ");
    print_hex(status);
    print("\n");
}

/* Gives the rng one buffer of `len` bytes at `iova`; 1 once it is used. */
static int rng_fill(uint32_t iova, uint32_t len)
{
    uint32_t descs = RNG_RAM, avail = RNG_RAM + 0x1000;
    desc_at(descs, rng_avail % QN, iova, len, 2, 0);
    R16(avail + 4 + 2 * (rng_avail % QN)) = rng_avail % QN;
    R16(avail + 2) = ++rng_avail;
    R16(RNG_BAR + NOTIFY) = 0;
    for (int i = 0; i < 20000000; i++) {
        if (R16(RNG_RAM + 0x2000 + 2) != rng_used) {
            rng_used++;
            return 1;
        }
        if (R8(RNG_BAR + COMMON + STATUS) & NEEDS_RESET)
            return 0;
        __asm__ volatile("pause");
    }
    return 0;
}

static int nonzero(uint32_t at, uint32_t len)
{
    uint32_t any = 0;
    for (uint32_t i = 0; i < len; i += 4)
        any |= R32(at + i);
    return any != 0;
}

static void probe_and_refusals(void)
{
    zero(REQUEST, 0x100);
    R8(REQUEST) = T_PROBE;
    R32(REQUEST + 4) = rng_ep;
    uint32_t probe_size = R32(IOMMU_BAR + DEVICE_CFG + 32);
    check("probe of the rng", send(72, probe_size + 4), S_OK);
    uint32_t p = REQUEST + 72;
    print("probe: type ");
    print_hex(R16(p));
    print(" subtype ");
    print_hex(R8(p + 4));
    print(" from ");
    print_hex(R32(p + 8));
    print(" to ");
    print_hex(R32(p + 16));
    print("\n");
    R8(REQUEST) = T_PROBE;
    R32(REQUEST + 4) = 0xffff;
    check("probe of no endpoint", send(72, probe_size + 4), S_NOENT);

    check("map before attach", map(1, RNG_IOVA, RNG_IOVA + 0x3fff, RNG_RAM, F_READ | F_WRITE), S_NOENT);
    check("attach of no endpoint", attach(1, 0xffff, 0), S_NOENT);
    check("attach with bypass", attach(1, rng_ep, 1), S_INVAL);
    check("attach", attach(1, rng_ep, 0), S_OK);
    check("map", map(1, RNG_IOVA, RNG_IOVA + 0x3fff, RNG_RAM, F_READ | F_WRITE), S_OK);
    check("overlapping map", map(1, RNG_IOVA + 0x2000, RNG_IOVA + 0x2fff, 0x600000, F_READ), S_INVAL);
    check("map outside RAM", map(1, 0x20000000, 0x20000fff, 0xf0000000u, F_READ), S_RANGE);
    check("map across RAM's end", map(1, 0x20000000, 0x20001fff, 0x3fff000, F_READ), S_RANGE);
    check("misaligned map", map(1, 0x20000800, 0x20000fff, 0x600000, F_READ), S_INVAL);
    check("mmio map", map(1, 0x20000000, 0x20000fff, 0x600000, F_READ | F_MMIO), S_INVAL);
    check("unmap splitting a mapping", unmap(1, RNG_IOVA, RNG_IOVA + 0xfff), S_RANGE);
}

void guest_main(void)
{
    unsigned iommu_slot = virtio_map(0x10571af4, IOMMU_BAR);
    unsigned rng_slot = virtio_map(0x10441af4, RNG_BAR);
    if (!iommu_slot || !rng_slot) {
        print("viommu: no virtio-iommu or no virtio-rng\n");
        return;
    }
    rng_ep = rng_slot << 3;
    R32(IOMMU_BAR + COMMON + DFSEL) = 0;
    print("iommu features ");
    print_hex(R32(IOMMU_BAR + COMMON + DF));
    print(" page sizes ");
    print_hex(R32(IOMMU_BAR + DEVICE_CFG));
    print("\n");
    R32(RNG_BAR + COMMON + DFSEL) = 1;
    print(R32(RNG_BAR + COMMON + DF) & 2 ? "rng offers ACCESS_PLATFORM\n" : "viommu: rng without ACCESS_PLATFORM\n");
    /* INPUT_RANGE, MAP_UNMAP, PROBE. */
    if (virtio_start_queues(IOMMU_BAR, 1 | 4 | 16, 2, QN) < 0) {
        print("viommu: FEATURES_OK refused\n");
        return;
    }
    for (unsigned i = 0; i < 4; i++) {
        desc_at(VQ_DESCS(EVT), i, EVENTS + 0x40 * i, 0x40, 2, 0);
        R16(VQ_AVAIL(EVT) + 4 + 2 * i) = (uint16_t)i;
    }
    R16(VQ_AVAIL(EVT) + 2) = 4;
    R16(IOMMU_BAR + NOTIFY + NOTIFY_MULTIPLIER * EVT) = EVT;

    probe_and_refusals();

    /* The rng on IOVAs: rings in the first three pages, a buffer in the fourth. */
    zero(RNG_RAM, 0x4000);
    virtio_reset(RNG_BAR);
    R8(RNG_BAR + COMMON + STATUS) = 1 | 2;
    R32(RNG_BAR + COMMON + GFSEL) = 1;
    R32(RNG_BAR + COMMON + GF) = 1 | 2; /* VERSION_1, ACCESS_PLATFORM */
    R8(RNG_BAR + COMMON + STATUS) = 1 | 2 | 8;
    R16(RNG_BAR + COMMON + QSEL) = 0;
    R16(RNG_BAR + COMMON + QSIZE) = QN;
    R16(RNG_BAR + COMMON + QVEC) = 0xffff;
    R32(RNG_BAR + COMMON + QDESC) = RNG_IOVA; R32(RNG_BAR + COMMON + QDESC + 4) = 0;
    R32(RNG_BAR + COMMON + QDRV) = RNG_IOVA + 0x1000; R32(RNG_BAR + COMMON + QDRV + 4) = 0;
    R32(RNG_BAR + COMMON + QDEV) = RNG_IOVA + 0x2000; R32(RNG_BAR + COMMON + QDEV + 4) = 0;
    R16(RNG_BAR + COMMON + QEN) = 1;
    R8(RNG_BAR + COMMON + STATUS) = 1 | 2 | 4 | 8;
    print(rng_fill(RNG_IOVA + 0x3000, 64) && nonzero(RNG_RAM + 0x3000, 64) && !nonzero(RNG_RAM + 0x3040, 64)
              ? "rng filled its buffer through the iommu\n" : "viommu: the rng's buffer was not filled\n");

    /* IOVA 0x10004000 → 0x500000, 0x10005000 → 0x480000: one buffer over both. */
    zero(0x480000, 0x1000);
    zero(0x500000, 0x1000);
    check("map of a first piece", map(1, RNG_IOVA + 0x4000, RNG_IOVA + 0x4fff, 0x500000, F_WRITE), S_OK);
    check("map of a second piece", map(1, RNG_IOVA + 0x5000, RNG_IOVA + 0x5fff, 0x480000, F_WRITE), S_OK);
    print(rng_fill(RNG_IOVA + 0x4800, 0x1000) && nonzero(0x500800, 0x800) && nonzero(0x480000, 0x800)
              && !nonzero(0x480800, 0x800) && !nonzero(0x500000, 0x800)
              ? "a buffer across two mappings filled both pieces\n" : "viommu: the split buffer went wrong\n");
    check("unmap of both pieces", unmap(1, RNG_IOVA + 0x4000, RNG_IOVA + 0x5fff), S_OK);

    /* The same IOVA, unmapped now: a fault, and the rng stops. */
    print(rng_fill(RNG_IOVA + 0x4000, 64) ? "viommu: an unmapped buffer was used\n" : "an unmapped buffer was refused\n");
    print(R8(RNG_BAR + COMMON + STATUS) & NEEDS_RESET ? "rng needs a reset\n" : "viommu: rng still running\n");
    for (int i = 0; i < 20000000 && R16(VQ_USED(EVT) + 2) == 0; i++)
        __asm__ volatile("pause");
    uint32_t e = EVENTS + 0x40 * R32(VQ_USED(EVT) + 4);
    print("fault: reason ");
    print_hex(R8(e));
    print(" flags ");
    print_hex(R32(e + 4));
    print(" endpoint ");
    print_hex(R32(e + 8));
    print(" address ");
    print_hex(R32(e + 16));
    print("\n");
    check("detach", detach(1, rng_ep), S_OK);
    check("detach again", detach(1, rng_ep), S_NOENT);

    /* RAM's worth of 4 KiB mappings of one page, then refused. */
    check("attach to a second domain", attach(2, rng_ep, 0), S_OK);
    uint32_t count = 0;
    while (count < 0x20000 && map(2, (uint64_t)count << 12, ((uint64_t)count << 12) + 0xfff, 0x600000, F_READ) == S_OK)
        count++;
    print("mappings until refused: ");
    print_hex(count);
    print("\n");
    check("unmap of everything", unmap(2, 0, ~0ull), S_OK);
    check("map after that", map(2, 0, 0xfff, 0x600000, F_READ), S_OK);

    /* A reset leaves no endpoint attached. */
    req_avail = req_used = 0;
    if (virtio_start_queues(IOMMU_BAR, 1 | 4 | 16, 1, QN) < 0) {
        print("viommu: FEATURES_OK refused after the reset\n");
        return;
    }
    check("detach after a reset", detach(2, rng_ep), S_NOENT);
}
