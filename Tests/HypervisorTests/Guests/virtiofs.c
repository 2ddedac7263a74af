/* A virtio-fs driver just large enough to read a file through a real
 * vhost-user backend (virtiofsd) with FUSE requests: INIT, LOOKUP, OPEN,
 * READ on the request queue, polling its used ring (the backend writes it;
 * this VMM only handed the rings over). Then a device reset, which takes
 * the rings back from the backend, and the same again; then a reboot,
 * after which all of it runs again. Prints what it saw; the test
 * (VhostUserTests) reads the lines. */
#include "pci_guest.h"

enum { HIPRIO = 0, REQUEST = 1, QUEUES = 2, QSIZE_N = 8 };
#define DESCS(q) VQ_DESCS(q)
#define AVAIL(q) VQ_AVAIL(q)
#define USED(q) VQ_USED(q)
#define IN 0x300000u
#define OUT 0x301000u

enum { FUSE_LOOKUP = 1, FUSE_OPEN = 14, FUSE_READ = 15, FUSE_INIT = 26 };

static uint16_t avail_idx[QUEUES];
static uint32_t bar;
static uint32_t unique;

static int start(void)
{
    for (unsigned q = 0; q < QUEUES; q++)
        avail_idx[q] = 0;
    return virtio_start_queues(bar, 0, QUEUES, QSIZE_N);
}

/* One FUSE request: a header and `len` bytes of argument at IN+40 for
 * `nodeid`; the answer lands at OUT. Returns the answer's error (0 ok),
 * or 1 when the backend never answered. */
static int32_t fuse(uint32_t opcode, uint64_t nodeid, uint32_t len)
{
    R32(IN) = 40 + len;
    R32(IN + 4) = opcode;
    R32(IN + 8) = ++unique; R32(IN + 12) = 0;
    R32(IN + 16) = (uint32_t)nodeid; R32(IN + 20) = (uint32_t)(nodeid >> 32);
    R32(IN + 24) = 0; R32(IN + 28) = 0; R32(IN + 32) = 1; R32(IN + 36) = 0;
    zero(OUT, 0x1000);
    desc_at(DESCS(REQUEST), 0, IN, 40 + len, 1, 1);
    desc_at(DESCS(REQUEST), 1, OUT, 0x1000, 2, 0);
    R16(AVAIL(REQUEST) + 4 + 2 * (avail_idx[REQUEST] % QSIZE_N)) = 0;
    R16(AVAIL(REQUEST) + 2) = ++avail_idx[REQUEST];
    R16(bar + NOTIFY + NOTIFY_MULTIPLIER * REQUEST) = REQUEST;
    for (int i = 0; i < 400000000 && R16(USED(REQUEST) + 2) != avail_idx[REQUEST]; i++)
        __asm__ volatile("pause");
    if (R16(USED(REQUEST) + 2) != avail_idx[REQUEST])
        return 1;
    return (int32_t)R32(OUT + 4);
}

static void session(void)
{
    /* INIT 7.31: flags none; the answer's major and minor follow the 16-byte header. */
    R32(IN + 40) = 7; R32(IN + 44) = 31; R32(IN + 48) = 0; R32(IN + 52) = 0;
    int32_t e = fuse(FUSE_INIT, 0, 16);
    print("init error "); print_hex((uint32_t)e); print(" major "); print_hex(R32(OUT + 16)); print("\n");
    /* LOOKUP hello.txt in the root (node 1): its node and size. */
    const char *name = "hello.txt";
    for (unsigned i = 0; i < 10; i++)
        R8(IN + 40 + i) = (uint8_t)name[i];
    e = fuse(FUSE_LOOKUP, 1, 10);
    uint32_t node = R32(OUT + 16), size = R32(OUT + 16 + 48);
    print("lookup error "); print_hex((uint32_t)e); print(" size "); print_hex(size); print("\n");
    /* OPEN read-only, READ it whole. */
    R32(IN + 40) = 0; R32(IN + 44) = 0;
    e = fuse(FUSE_OPEN, node, 8);
    uint32_t fh_lo = R32(OUT + 16), fh_hi = R32(OUT + 20);
    zero(IN + 40, 40);
    R32(IN + 40) = fh_lo; R32(IN + 44) = fh_hi;
    R32(IN + 56) = 256;
    e = fuse(FUSE_READ, node, 40);
    print("read error "); print_hex((uint32_t)e); print(" [");
    char text[64];
    uint32_t n = R32(OUT) - 16;
    for (uint32_t i = 0; i < n && i < sizeof(text) - 1; i++)
        text[i] = (char)R8(OUT + 16 + i);
    text[n < sizeof(text) - 1 ? n : sizeof(text) - 1] = 0;
    print(text); print("]\n");
}

void guest_main(void)
{
    bar = 0xc0000000u;
    if (!virtio_map(0x105a1af4, bar)) {
        print("virtiofs: no virtio-fs\n");
        return;
    }
    char tag[37];
    for (unsigned i = 0; i < 36; i++)
        tag[i] = (char)R8(bar + DEVICE_CFG + i);
    tag[36] = 0;
    print("tag ["); print(tag); print("] request queues "); print_hex(R32(bar + DEVICE_CFG + 36)); print("\n");
    if (start() < 0) {
        print("virtiofs: FEATURES_OK refused\n");
        return;
    }
    session();
    /* A reset: the VMM takes the rings back (GET_VRING_BASE), then the
     * driver starts again and the backend serves the new rings. */
    virtio_reset(bar);
    print(R8(bar + COMMON + STATUS) == 0 ? "reset done\n" : "virtiofs: reset not acknowledged\n");
    if (start() < 0) {
        print("virtiofs: FEATURES_OK refused after reset\n");
        return;
    }
    const char *name = "hello.txt";
    for (unsigned i = 0; i < 10; i++)
        R8(IN + 40 + i) = (uint8_t)name[i];
    int32_t e = fuse(FUSE_LOOKUP, 1, 10);
    print("after reset lookup error "); print_hex((uint32_t)e); print("\n");
    print("virtiofs done\n");
    /* A reboot (the ACPI reset value): the next boot's device on the same
     * backend connection, which must be reset first. */
    __asm__ volatile("outb %0, %1" : : "a"((uint8_t)1), "Nd"((uint16_t)0x600));
}
