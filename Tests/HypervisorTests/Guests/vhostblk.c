/* A virtio-blk driver just large enough to use a disk a vhost-user backend
 * (qemu-storage-daemon) serves: the capacity from config space (the
 * backend's), a read of sector 0, a write to sector 1 and its read-back,
 * polling the used ring the backend writes. Prints what it saw; the test
 * (VhostUserTests) reads the lines and the image. */
#include "pci_guest.h"

void guest_main(void)
{
    uint32_t bar = 0xc0000000u;
    uint16_t avail = 0;
    if (!virtio_map(0x10421af4, bar)) {
        print("vhostblk: no virtio-blk\n");
        return;
    }
    print("capacity "); print_hex(R32(bar + DEVICE_CFG)); print(" sectors\n");
    zero(VQ_RING(0), 0x3000);
    if (virtio_start_queue0(bar, 8, VQ_DESCS(0), VQ_AVAIL(0), VQ_USED(0)) < 0) {
        print("vhostblk: FEATURES_OK refused\n");
        return;
    }
    int s = blk_request(bar, &avail, 0, 0, 512);
    char text[17];
    for (unsigned i = 0; i < 16; i++)
        text[i] = (char)R8(BLK_DATA + i);
    text[16] = 0;
    print("read status "); print_hex((uint32_t)s); print(" ["); print(text); print("]\n");
    const char *msg = "written by guest";
    for (unsigned i = 0; i < 512; i++)
        R8(BLK_DATA + i) = i < 16 ? (uint8_t)msg[i] : 0;
    s = blk_request(bar, &avail, 1, 1, 512);
    zero(BLK_DATA, 512);
    int back = blk_request(bar, &avail, 0, 1, 512);
    for (unsigned i = 0; i < 16; i++)
        text[i] = (char)R8(BLK_DATA + i);
    print("write status "); print_hex((uint32_t)s); print(" read back "); print_hex((uint32_t)back); print(" ["); print(text); print("]\n");
    virtio_reset(bar);
    print("vhostblk done\n");
}
