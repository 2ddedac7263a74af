/* Inside the L2 guest: the cost of one read from an assigned device's BAR.
 *   barbench VENDOR DEVICE mapped  - reads BAR0 offset 4 (edu's liveness
 *                                    register), which a VMM can map straight
 *                                    into the guest;
 *   barbench VENDOR DEVICE msix    - reads the first MSI-X table entry, which
 *                                    every VMM traps.
 * Prints "L2: bench KIND ns_per_read=N". */
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int find(const char *vendor, const char *device, char *out, size_t size)
{
    DIR *d = opendir("/sys/bus/pci/devices");
    struct dirent *e;
    while (d && (e = readdir(d))) {
        char path[512], v[16] = "", id[16] = "";
        snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/vendor", e->d_name);
        FILE *f = fopen(path, "r");
        if (f) { fgets(v, sizeof(v), f); fclose(f); }
        snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/device", e->d_name);
        if ((f = fopen(path, "r"))) { fgets(id, sizeof(id), f); fclose(f); }
        if (!strncmp(v + 2, vendor, 4) && !strncmp(id + 2, device, 4)) {
            snprintf(out, size, "/sys/bus/pci/devices/%s", e->d_name);
            closedir(d);
            return 0;
        }
    }
    if (d)
        closedir(d);
    return -1;
}

int main(int argc, char **argv)
{
    char dev[300], path[400];
    if (argc != 4 || find(argv[1], argv[2], dev, sizeof(dev)) < 0) {
        printf("L2: bench device not found\n");
        return 1;
    }
    uint8_t cfg[256] = { 0 };
    snprintf(path, sizeof(path), "%s/config", dev);
    int fd = open(path, O_RDWR);
    if (fd < 0 || pread(fd, cfg, sizeof(cfg), 0) != sizeof(cfg))
        return 1;
    uint16_t cmd = (uint16_t)(cfg[4] | cfg[5] << 8) | 0x2;
    pwrite(fd, &cmd, 2, 4); /* memory decode on, as a driver would */
    close(fd);
    unsigned bar = 0;
    uint64_t offset = 4;
    if (!strcmp(argv[3], "msix")) {
        uint8_t at = cfg[0x34];
        while (at && cfg[at] != 0x11)
            at = cfg[at + 1];
        if (!at) {
            printf("L2: bench no MSI-X\n");
            return 1;
        }
        uint32_t table = cfg[at + 4] | cfg[at + 5] << 8 | cfg[at + 6] << 16 | (uint32_t)cfg[at + 7] << 24;
        bar = table & 7;
        offset = table & ~7u;
    }
    snprintf(path, sizeof(path), "%s/resource%u", dev, bar);
    fd = open(path, O_RDWR | O_SYNC);
    volatile uint8_t *p = fd < 0 ? MAP_FAILED : mmap(NULL, offset + 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) {
        printf("L2: bench cannot map %s\n", path);
        return 1;
    }
    unsigned reads = 20000;
    uint32_t sink = 0;
    double start = now();
    for (unsigned i = 0; i < reads; i++)
        sink += *(volatile uint32_t *)(p + offset);
    double ns = (now() - start) / reads * 1e9;
    printf("L2: bench %s ns_per_read=%.0f (%u)\n", argv[3], ns, sink & 1);
    return 0;
}
