/* Tap devices: open, adopt, configure (vmm_tap.h). */
#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "net/vmm_tap.h"

/* The header every frame carries between tap and guest. */
static int finish_queue(int fd)
{
    int size = VMM_VIRTIO_NET_HDR_SIZE;
    int flags = fcntl(fd, F_GETFL);
    if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0)
        return -errno;
    return ioctl(fd, TUNSETVNETHDRSZ, &size) < 0 ? -errno : 0;
}

int vmm_tap_open(const char *name, unsigned queues, int *fds, char name_out[VMM_TAP_NAME_MAX], bool *existed)
{
    char wanted[IFNAMSIZ] = "vmtap%d";
    if (name && *name) {
        if (strlen(name) >= IFNAMSIZ)
            return -ENAMETOOLONG;
        snprintf(wanted, sizeof(wanted), "%s", name);
    }
    *existed = name && *name && if_nametoindex(name) != 0;
    unsigned opened = 0;
    int ret = 0;
    for (; opened < queues; opened++) {
        int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
        if (fd < 0) {
            ret = -errno;
            break;
        }
        struct ifreq ifr = { 0 };
        /* Later queues join the tap the first one created or found. */
        snprintf(ifr.ifr_name, IFNAMSIZ, "%s", opened ? name_out : wanted);
        ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR | (queues > 1 ? IFF_MULTI_QUEUE : 0);
        if (ioctl(fd, TUNSETIFF, &ifr) < 0 || (ret = finish_queue(fd)) < 0) {
            ret = ret < 0 ? ret : -errno;
            close(fd);
            break;
        }
        if (opened == 0)
            snprintf(name_out, VMM_TAP_NAME_MAX, "%s", ifr.ifr_name);
        fds[opened] = fd;
    }
    if (ret < 0)
        while (opened)
            close(fds[--opened]);
    return ret;
}

int vmm_tap_adopt(int fd, bool multiqueue, char name_out[VMM_TAP_NAME_MAX])
{
    struct ifreq ifr = { 0 };
    if (ioctl(fd, TUNGETIFF, &ifr) < 0)
        return errno == EBADF ? -EBADF : -ENOTTY;
    if ((ifr.ifr_flags & (IFF_TAP | IFF_NO_PI | IFF_VNET_HDR)) != (IFF_TAP | IFF_NO_PI | IFF_VNET_HDR))
        return -ENOTTY;
    if (multiqueue && !(ifr.ifr_flags & IFF_MULTI_QUEUE))
        return -EINVAL;
    snprintf(name_out, VMM_TAP_NAME_MAX, "%s", ifr.ifr_name);
    return finish_queue(fd);
}

/* One interface ioctl through a throwaway control socket. */
static int if_ioctl(unsigned long request, struct ifreq *ifr)
{
    int sock = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (sock < 0)
        return -errno;
    int ret = ioctl(sock, request, ifr) < 0 ? -errno : 0;
    close(sock);
    return ret;
}

static int named(struct ifreq *ifr, const char *name)
{
    memset(ifr, 0, sizeof(*ifr));
    if (strlen(name) >= IFNAMSIZ)
        return -ENAMETOOLONG;
    snprintf(ifr->ifr_name, IFNAMSIZ, "%s", name);
    return 0;
}

static int set_inet(const char *name, unsigned long request, uint32_t value)
{
    struct ifreq ifr;
    int ret = named(&ifr, name);
    if (ret < 0)
        return ret;
    struct sockaddr_in *sin = (struct sockaddr_in *)&ifr.ifr_addr;
    sin->sin_family = AF_INET;
    sin->sin_addr.s_addr = value;
    return if_ioctl(request, &ifr);
}

int vmm_tap_set_ipv4(const char *name, uint32_t address, uint32_t netmask)
{
    int ret = set_inet(name, SIOCSIFADDR, address);
    return ret < 0 ? ret : set_inet(name, SIOCSIFNETMASK, netmask);
}

int vmm_tap_set_mac(const char *name, const uint8_t mac[6])
{
    struct ifreq ifr;
    int ret = named(&ifr, name);
    if (ret < 0)
        return ret;
    ifr.ifr_hwaddr.sa_family = 1; /* ARPHRD_ETHER */
    memcpy(ifr.ifr_hwaddr.sa_data, mac, 6);
    return if_ioctl(SIOCSIFHWADDR, &ifr);
}

int vmm_tap_set_mtu(const char *name, unsigned mtu)
{
    struct ifreq ifr;
    int ret = named(&ifr, name);
    if (ret < 0)
        return ret;
    ifr.ifr_mtu = (int)mtu;
    return if_ioctl(SIOCSIFMTU, &ifr);
}

int vmm_tap_get_mtu(const char *name, unsigned *mtu)
{
    struct ifreq ifr;
    int ret = named(&ifr, name);
    if (ret < 0 || (ret = if_ioctl(SIOCGIFMTU, &ifr)) < 0)
        return ret;
    *mtu = (unsigned)ifr.ifr_mtu;
    return 0;
}

int vmm_tap_up(const char *name)
{
    struct ifreq ifr;
    int ret = named(&ifr, name);
    if (ret < 0 || (ret = if_ioctl(SIOCGIFFLAGS, &ifr)) < 0)
        return ret;
    ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
    return if_ioctl(SIOCSIFFLAGS, &ifr);
}
