/* A RARP frame with the guest's MAC, written into the tap as if the guest
 * had sent it: after a restore or a migration the switches and bridges on
 * the host side learn at once where the guest's address now lives, before
 * the guest itself sends anything (Cloud Hypervisor and QEMU do the same). */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "net/vmm_tap.h"

#define ETH_P_RARP 0x8035
#define RARP_REQUEST_REVERSE 3

int vmm_tap_announce(int fd, const uint8_t mac[6])
{
    /* The virtio-net header (no offloads), then a minimum-size frame. */
    uint8_t frame[VMM_VIRTIO_NET_HDR_SIZE + 60] = { 0 };
    uint8_t *eth = frame + VMM_VIRTIO_NET_HDR_SIZE;
    memset(eth, 0xff, 6);
    memcpy(eth + 6, mac, 6);
    eth[12] = ETH_P_RARP >> 8;
    eth[13] = ETH_P_RARP & 0xff;
    uint8_t *rarp = eth + 14;
    rarp[1] = 1;    /* hardware: Ethernet */
    rarp[2] = 0x08; /* protocol: IPv4 */
    rarp[4] = 6;
    rarp[5] = 4;
    rarp[7] = RARP_REQUEST_REVERSE;
    memcpy(rarp + 8, mac, 6);  /* sender's hardware address; its IP is 0 */
    memcpy(rarp + 18, mac, 6); /* target's */
    ssize_t n = write(fd, frame, sizeof(frame));
    return n == (ssize_t)sizeof(frame) ? 0 : n < 0 ? -errno : -EIO;
}
