/* Tap devices for virtio-net, opened and configured on the VMM thread
 * before the privilege drop (creating one and setting its address need
 * CAP_NET_ADMIN). Every queue is an fd of the same tap (IFF_MULTI_QUEUE
 * when there are several), non-blocking, with a 12-byte virtio-net header
 * (IFF_VNET_HDR) so offloads pass between guest and host untouched.
 * Each returns 0 or a negative errno. */
#ifndef VMM_TAP_H
#define VMM_TAP_H

#include <stdbool.h>
#include <stdint.h>

#define VMM_TAP_NAME_MAX 16 /* IFNAMSIZ */
/* struct virtio_net_hdr_v1: what a version-1 device and the tap exchange. */
#define VMM_VIRTIO_NET_HDR_SIZE 12

/* Opens `queues` queues of tap `name` (NULL or "": a new one the kernel
 * names vmtapN) into `fds`; `name_out` gets its name, `existed` whether
 * it was there before. */
int vmm_tap_open(const char *name, unsigned queues, int *fds, char name_out[VMM_TAP_NAME_MAX], bool *existed);
/* Takes an fd the caller opened (`--net fd=`): -ENOTTY unless it is a tap
 * opened with IFF_VNET_HDR and without packet info, -EINVAL if it is not
 * multiqueue while `multiqueue` is asked; then the same setup as above. */
int vmm_tap_adopt(int fd, bool multiqueue, char name_out[VMM_TAP_NAME_MAX]);

/* The host side of tap `name` (an AF_INET control socket each). */
int vmm_tap_set_ipv4(const char *name, uint32_t address, uint32_t netmask); /* network byte order */
int vmm_tap_set_mac(const char *name, const uint8_t mac[6]);
int vmm_tap_set_mtu(const char *name, unsigned mtu);
int vmm_tap_get_mtu(const char *name, unsigned *mtu);
int vmm_tap_up(const char *name);
/* Writes a RARP frame from `mac` into the tap (one of its queue fds), as
 * if the guest sent it: the host side learns where it now is. */
int vmm_tap_announce(int fd, const uint8_t mac[6]);

#endif
