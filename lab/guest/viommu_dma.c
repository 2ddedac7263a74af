/* Runs inside the L2 guest, the edu (1234:11e8) assigned with iommu=on and
 * bound to the guest's own vfio-pci: a userspace driver, as DPDK would be,
 * through the virtual IOMMU.
 *   1. two buffers mapped with VFIO_IOMMU_MAP_DMA at IOVAs of our choosing
 *      (not their guest physical addresses); the edu copies one to its own
 *      memory and back into the other: the data must match;
 *   2. the second buffer unmapped, the edu copies to its IOVA again: the
 *      write must not land, and the guest runs on.
 * Prints "L2: viommu ..." lines for the lab tests.
 *   viommu_dma bench SECONDS [BDF]: for bench/viommu.py, here or in L1 on
 *   L1's own VFIO: how many MAP_DMA + UNMAP_DMA pairs of a 4 KiB buffer,
 *   and how many edu DMA round trips, a second. */
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <libgen.h>
#include <linux/vfio.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "edu.h"
/* IOVAs below edu's 28-bit DMA limit, far from where guest RAM's pages are. */
#define IOVA_SRC 0x0100000ull
#define IOVA_DST 0x0200000ull

static void fail(const char *what)
{
    printf("L2: viommu failed: %s: %m\n", what);
    exit(1);
}

static void map(int container, void *buffer, uint64_t iova)
{
    struct vfio_iommu_type1_dma_map m = {
        .argsz = sizeof(m), .flags = VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE,
        .vaddr = (uint64_t)(uintptr_t)buffer, .iova = iova, .size = 4096 };
    if (ioctl(container, VFIO_IOMMU_MAP_DMA, &m) < 0)
        fail("VFIO_IOMMU_MAP_DMA");
}

static int all(const uint8_t *p, uint8_t value)
{
    for (int i = 0; i < DMA_BYTES; i++)
        if (p[i] != value)
            return 0;
    return 1;
}

static void bench(int container, double seconds)
{
    uint8_t *buffer = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    struct vfio_iommu_type1_dma_unmap unmap = { .argsz = sizeof(unmap), .iova = IOVA_SRC, .size = 4096 };
    unsigned long pairs = 0, trips = 0;
    double start = now(), end = start + seconds;
    for (; now() < end; pairs++) {
        map(container, buffer, IOVA_SRC);
        if (ioctl(container, VFIO_IOMMU_UNMAP_DMA, &unmap) < 0)
            fail("VFIO_IOMMU_UNMAP_DMA");
    }
    double mapped = now() - start;
    map(container, buffer, IOVA_SRC);
    start = now(), end = start + seconds;
    for (; now() < end; trips++)
        if (edu_dma(IOVA_SRC, DEVICE_BUFFER, 0) < 0 || edu_dma(DEVICE_BUFFER, IOVA_SRC, DMA_TO_RAM) < 0)
            fail("the edu's DMA did not finish");
    printf("L2: viommu bench map_unmap_per_s=%.1f dma_round_trips_per_s=%.2f\n", pairs / mapped, trips / (now() - start));
}

int main(int argc, char **argv)
{
    char bdf[256] = "", link[300], path[300];
    bool benchmark = argc > 2 && strcmp(argv[1], "bench") == 0;
    DIR *d = opendir("/sys/bus/pci/drivers/vfio-pci");
    struct dirent *e;
    while (d && (e = readdir(d)))
        if (strchr(e->d_name, ':'))
            snprintf(bdf, sizeof(bdf), "%s", e->d_name);
    if (benchmark && argc > 3)
        snprintf(bdf, sizeof(bdf), "%s", argv[3]);
    if (!bdf[0])
        fail("no device on vfio-pci");
    snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/iommu_group", bdf);
    ssize_t n = readlink(path, link, sizeof(link) - 1);
    if (n < 0)
        fail("no IOMMU group");
    link[n] = 0;
    snprintf(path, sizeof(path), "/dev/vfio/%s", basename(link));
    printf("L2: viommu %s in IOMMU group %s\n", bdf, basename(link));

    int container = open("/dev/vfio/vfio", O_RDWR);
    int group = open(path, O_RDWR);
    if (container < 0 || group < 0)
        fail("open the container or group");
    struct vfio_group_status status = { .argsz = sizeof(status) };
    if (ioctl(group, VFIO_GROUP_GET_STATUS, &status) < 0 || !(status.flags & VFIO_GROUP_FLAGS_VIABLE))
        fail("group not viable");
    if (ioctl(group, VFIO_GROUP_SET_CONTAINER, &container) < 0)
        fail("VFIO_GROUP_SET_CONTAINER");
    if (ioctl(container, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU) < 0)
        fail("VFIO_SET_IOMMU");
    int device = ioctl(group, VFIO_GROUP_GET_DEVICE_FD, bdf);
    if (device < 0)
        fail("VFIO_GROUP_GET_DEVICE_FD");
    struct vfio_region_info region = { .argsz = sizeof(region), .index = VFIO_PCI_BAR0_REGION_INDEX };
    struct vfio_region_info config = { .argsz = sizeof(config), .index = VFIO_PCI_CONFIG_REGION_INDEX };
    if (ioctl(device, VFIO_DEVICE_GET_REGION_INFO, &region) < 0 || ioctl(device, VFIO_DEVICE_GET_REGION_INFO, &config) < 0)
        fail("VFIO_DEVICE_GET_REGION_INFO");
    bar = mmap(NULL, region.size, PROT_READ | PROT_WRITE, MAP_SHARED, device, (off_t)region.offset);
    if (bar == MAP_FAILED)
        fail("mmap BAR0");
    /* Memory decoding and bus mastering: the device may DMA now. */
    uint16_t command;
    if (pread(device, &command, 2, (off_t)config.offset + 4) != 2)
        fail("read the command register");
    command |= 0x6;
    if (pwrite(device, &command, 2, (off_t)config.offset + 4) != 2)
        fail("write the command register");
    printf("L2: viommu edu id %#x\n", rd(REG_ID));
    if (benchmark) {
        bench(container, atof(argv[2]));
        return 0;
    }

    uint8_t *src = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    uint8_t *dst = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    srand((unsigned)time(NULL));
    for (int i = 0; i < 4096; i++)
        src[i] = (uint8_t)rand();
    memset(dst, 0, 4096);
    map(container, src, IOVA_SRC);
    map(container, dst, IOVA_DST);
    if (edu_dma(IOVA_SRC, DEVICE_BUFFER, 0) < 0 || edu_dma(DEVICE_BUFFER, IOVA_DST, DMA_TO_RAM) < 0)
        fail("the edu's DMA did not finish");
    printf("L2: viommu dma through the guest's mappings %s\n", memcmp(src, dst, DMA_BYTES) ? "differs" : "matches");

    struct vfio_iommu_type1_dma_unmap unmap = { .argsz = sizeof(unmap), .iova = IOVA_DST, .size = 4096 };
    if (ioctl(container, VFIO_IOMMU_UNMAP_DMA, &unmap) < 0 || unmap.size != 4096)
        fail("VFIO_IOMMU_UNMAP_DMA");
    memset(dst, 0x5a, 4096);
    int done = edu_dma(DEVICE_BUFFER, IOVA_DST, DMA_TO_RAM);
    printf("L2: viommu dma to an unmapped iova %s (device %s)\n", all(dst, 0x5a) ? "did not land" : "LANDED",
           done == 0 ? "done" : "stuck");
    printf("L2: viommu still running\n");
    return 0;
}
