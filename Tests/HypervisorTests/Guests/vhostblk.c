/* A virtio-blk driver just large enough to use a disk a vhost-user backend
 * (qemu-storage-daemon) serves: the capacity from config space (the
 * backend's), a read of sector 0, a write to sector 1 and its read-back,
 * polling the used ring the backend writes. Prints what it saw; the test
 * (VhostUserTests) reads the lines and the image. */
#include "pci_guest.h"

#define DESCS 0x200000u
#define AVAIL 0x201000u
#define USED 0x202000u
#define REQ 0x300000u
#define DATA 0x301000u
#define STATUS_BYTE 0x302000u
#define QSIZE_N 8

static uint16_t avail_idx;
static uint32_t bar;

/* One request of `type` (0 read, 1 write) for `sector`, 512 bytes at DATA. */
static int request(uint32_t type, uint32_t sector)
{
    R32(REQ) = type; R32(REQ + 4) = 0; R32(REQ + 8) = sector; R32(REQ + 12) = 0;
    R8(STATUS_BYTE) = 0xff;
    desc_at(DESCS, 0, REQ, 16, 1, 1);
    desc_at(DESCS, 1, DATA, 512, type == 0 ? 1 | 2 : 1, 2);
    desc_at(DESCS, 2, STATUS_BYTE, 1, 2, 0);
    R16(AVAIL + 4 + 2 * (avail_idx % QSIZE_N)) = 0;
    R16(AVAIL + 2) = ++avail_idx;
    R16(bar + NOTIFY) = 0;
    for (int i = 0; i < 400000000 && R16(USED + 2) != avail_idx; i++)
        __asm__ volatile("pause");
    return R16(USED + 2) == avail_idx ? R8(STATUS_BYTE) : 0xee;
}

void guest_main(void)
{
    bar = 0xc0000000u;
    if (!virtio_map(0x10421af4, bar)) {
        print("vhostblk: no virtio-blk\n");
        return;
    }
    print("capacity "); print_hex(R32(bar + DEVICE_CFG)); print(" sectors\n");
    zero(DESCS, 0x3000);
    if (virtio_start_queue0(bar, QSIZE_N, DESCS, AVAIL, USED) < 0) {
        print("vhostblk: FEATURES_OK refused\n");
        return;
    }
    int s = request(0, 0);
    char text[17];
    for (unsigned i = 0; i < 16; i++)
        text[i] = (char)R8(DATA + i);
    text[16] = 0;
    print("read status "); print_hex((uint32_t)s); print(" ["); print(text); print("]\n");
    const char *msg = "written by guest";
    for (unsigned i = 0; i < 512; i++)
        R8(DATA + i) = i < 16 ? (uint8_t)msg[i] : 0;
    s = request(1, 1);
    zero(DATA, 512);
    int back = request(0, 1);
    for (unsigned i = 0; i < 16; i++)
        text[i] = (char)R8(DATA + i);
    print("write status "); print_hex((uint32_t)s); print(" read back "); print_hex((uint32_t)back); print(" ["); print(text); print("]\n");
    virtio_reset(bar);
    print("vhostblk done\n");
}
