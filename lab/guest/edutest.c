/* Runs inside the L2 guest against QEMU's edu device (1234:11e8) assigned
 * by the VMM under test, with no kernel driver of its own:
 *   edutest probe  - through BAR0 (sysfs resource0, mmapped): identity,
 *                    liveness, factorial, and DMA both ways between guest
 *                    RAM and the device (guest physical addresses from
 *                    /proc/self/pagemap: IOVA = GPA is what is proven);
 *   edutest intx   - bound to uio_pci_generic: raises the device's interrupt
 *                    and waits for it on /dev/uioN (INTx, level, EOI resample).
 * Prints "L2: edu ..." lines for the lab tests. */
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "edu.h"

static char dev[300];
static char devs[8][300];
static int ndevs;


static void find_device(void)
{
    DIR *d = opendir("/sys/bus/pci/devices");
    struct dirent *e;
    while (d && (e = readdir(d))) {
        char path[300], id[32] = "";
        snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/vendor", e->d_name);
        FILE *f = fopen(path, "r");
        if (!f)
            continue;
        fgets(id, sizeof(id), f);
        fclose(f);
        snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/device", e->d_name);
        char did[32] = "";
        if ((f = fopen(path, "r"))) {
            fgets(did, sizeof(did), f);
            fclose(f);
        }
        if (!strncmp(id, "0x1234", 6) && !strncmp(did, "0x11e8", 6) && ndevs < 8)
            snprintf(devs[ndevs++], sizeof(devs[0]), "/sys/bus/pci/devices/%s", e->d_name);
    }
    if (d)
        closedir(d);
    if (!ndevs) {
        printf("L2: edu not found\n");
        exit(1);
    }
    /* readdir's order is not sorted: take them by address. */
    qsort(devs, (size_t)ndevs, sizeof(devs[0]), (int (*)(const void *, const void *))strcmp);
}

static void sysfs_write(const char *name, const char *text)
{
    char path[400];
    snprintf(path, sizeof(path), "%s/%s", dev, name);
    int fd = open(path, O_WRONLY);
    if (fd >= 0) {
        ssize_t ignored = write(fd, text, strlen(text));
        (void)ignored;
        close(fd);
    }
}

/* Sets and clears bits of the command register through sysfs. */
static void set_command(uint16_t set, uint16_t clear)
{
    char path[400];
    snprintf(path, sizeof(path), "%s/config", dev);
    int fd = open(path, O_RDWR);
    uint16_t cmd = 0;
    if (fd < 0 || pread(fd, &cmd, 2, 4) != 2) {
        printf("L2: edu config unreadable\n");
        exit(1);
    }
    cmd = (uint16_t)((cmd | set) & ~clear);
    if (pwrite(fd, &cmd, 2, 4) != 2)
        printf("L2: edu command write failed\n");
    close(fd);
}

/* Memory decode and bus mastering, as a driver's pci_enable_device and
 * pci_set_master would turn them on. */
static void enable_device(void)
{
    sysfs_write("enable", "1");
    set_command(0x6, 0);
}

static void map_bar(void)
{
    char path[400];
    snprintf(path, sizeof(path), "%s/resource0", dev);
    int fd = open(path, O_RDWR | O_SYNC);
    void *p = fd < 0 ? MAP_FAILED : mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) {
        printf("L2: edu BAR0 cannot be mapped\n");
        exit(1);
    }
    bar = p;
}


/* The guest physical address of a locked page, if below `limit`. */
static uint64_t physical(void *page, uint64_t limit)
{
    int fd = open("/proc/self/pagemap", O_RDONLY);
    uint64_t entry = 0;
    off_t at = (off_t)((uintptr_t)page / 4096 * 8);
    if (fd < 0 || pread(fd, &entry, 8, at) != 8)
        return 0;
    close(fd);
    uint64_t pa = (entry & ((1ull << 55) - 1)) * 4096;
    return (entry >> 63) && pa && pa + 4096 <= limit ? pa : 0;
}

/* Two pages of guest RAM the device can reach. */
static int dma_pages(uint8_t **a, uint64_t *pa, uint8_t **b, uint64_t *pb)
{
    size_t len = 16u << 20;
    uint8_t *pool = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE | MAP_LOCKED, -1, 0);
    if (pool == MAP_FAILED)
        return -1;
    int found = 0;
    for (size_t off = 0; off < len && found < 2; off += 4096) {
        uint64_t p = physical(pool + off, DMA_LIMIT);
        if (!p)
            continue;
        if (found++ == 0) {
            *a = pool + off;
            *pa = p;
        } else {
            *b = pool + off;
            *pb = p;
        }
    }
    return found == 2 ? 0 : -1;
}

static void probe(void)
{
    enable_device();
    map_bar();
    const char *name = strrchr(dev, '/') + 1;
    printf("L2: edu %s id=0x%08x\n", name, rd(REG_ID));
    wr(REG_LIVENESS, 0x12345678);
    printf("L2: edu %s liveness %s\n", name, rd(REG_LIVENESS) == ~0x12345678u ? "inverts" : "broken");
    wr(REG_STATUS, 0);
    wr(REG_FACTORIAL, 10);
    if (wait_clear(REG_STATUS, 1) < 0)
        printf("L2: edu %s factorial timed out\n", name);
    printf("L2: edu %s factorial(10)=%u\n", name, rd(REG_FACTORIAL));

    uint8_t *src, *dst;
    uint64_t psrc, pdst;
    if (dma_pages(&src, &psrc, &dst, &pdst) < 0) {
        printf("L2: edu dma no pages below 256M\n");
        return;
    }
    for (int i = 0; i < DMA_BYTES; i++)
        src[i] = (uint8_t)(i * 7 + 3);
    memset(dst, 0, DMA_BYTES);
    int t1 = edu_dma(psrc, DEVICE_BUFFER, 0);
    int t2 = edu_dma(DEVICE_BUFFER, pdst, DMA_TO_RAM);
    printf("L2: edu %s dma %s (ram 0x%llx -> device -> ram 0x%llx)\n", name,
           t1 < 0 || t2 < 0 ? "timed out" : memcmp(src, dst, DMA_BYTES) ? "mismatch" : "roundtrip ok",
           (unsigned long long)psrc, (unsigned long long)pdst);
}

static void intx(void)
{
    map_bar();
    int fd = open("/sys/bus/pci/drivers/uio_pci_generic/new_id", O_WRONLY);
    if (fd < 0 || write(fd, "1234 11e8", 9) < 0) {
        printf("L2: edu intx: no uio_pci_generic\n");
        return;
    }
    close(fd);
    char uio[64] = "";
    for (int tries = 0; tries < 100 && !uio[0]; tries++) {
        char path[400];
        snprintf(path, sizeof(path), "%s/uio", dev);
        DIR *d = opendir(path);
        struct dirent *e;
        while (d && (e = readdir(d)))
            if (!strncmp(e->d_name, "uio", 3))
                snprintf(uio, sizeof(uio), "/dev/%s", e->d_name);
        if (d)
            closedir(d);
        usleep(20000);
    }
    int u = uio[0] ? open(uio, O_RDWR) : -1;
    if (u < 0) {
        printf("L2: edu intx: no uio device\n");
        return;
    }
    int got = 0;
    for (int i = 0; i < 3; i++) {
        /* uio_pci_generic masks INTx in its handler; userspace unmasks by
         * clearing the command register's INTx-disable bit. */
        set_command(0, 0x400);
        wr(REG_IRQ_RAISE, 0x1);
        struct pollfd p = { .fd = u, .events = POLLIN };
        uint32_t count;
        if (poll(&p, 1, 5000) == 1 && read(u, &count, 4) == 4)
            got++;

        wr(REG_IRQ_ACK, rd(REG_IRQ_STATUS)); /* lower the line */
    }
    printf("L2: edu intx interrupts=%d of 3\n", got);
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IONBF, 0);
    find_device();
    if (argc == 2 && !strcmp(argv[1], "probe")) {
        printf("L2: edu devices=%d\n", ndevs);
        for (int i = 0; i < ndevs; i++) {
            memcpy(dev, devs[i], sizeof(dev));
            probe();
        }
    } else if (argc == 2 && !strcmp(argv[1], "intx")) {
        memcpy(dev, devs[0], sizeof(dev));
        intx();
    }
    else
        fprintf(stderr, "usage: edutest probe|intx\n");
    return 0;
}
