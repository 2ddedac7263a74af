/* Block benchmark run inside the L2 guest against a virtio disk, with
 * direct I/O so that the guest's page cache stays out of it: sequential
 * 1 MiB writes and reads (MB/s), then 4 KiB random reads from 4 threads
 * (IOPS). Prints one "L2: bench ..." line for the host to parse. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define BIG (1u << 20)
#define SMALL 4096u
#define THREADS 4
#define RANDOM_SECONDS 3.0

static const char *device;
static uint64_t blocks; /* 4 KiB blocks on the device */

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int open_direct(int flags)
{
    int fd = open(device, flags | O_DIRECT);
    if (fd < 0) {
        perror(device);
        exit(1);
    }
    return fd;
}

static double sequential(int write_mode, unsigned count)
{
    int fd = open_direct(write_mode ? O_WRONLY : O_RDONLY);
    void *buf;
    if (posix_memalign(&buf, 4096, BIG))
        exit(1);
    memset(buf, 0x5a, BIG);
    double start = now();
    for (unsigned i = 0; i < count; i++) {
        ssize_t n = write_mode ? pwrite(fd, buf, BIG, (off_t)i * BIG) : pread(fd, buf, BIG, (off_t)i * BIG);
        if (n != BIG) {
            perror("sequential I/O");
            exit(1);
        }
    }
    if (write_mode)
        fdatasync(fd);
    double seconds = now() - start;
    close(fd);
    free(buf);
    return count * (double)BIG / 1e6 / seconds;
}

static void *random_reader(void *arg)
{
    unsigned seed = (unsigned)(uintptr_t)arg;
    int fd = open_direct(O_RDONLY);
    void *buf;
    if (posix_memalign(&buf, 4096, SMALL))
        exit(1);
    uint64_t done = 0;
    double end = now() + RANDOM_SECONDS;
    while (now() < end) {
        uint64_t block = (uint64_t)rand_r(&seed) % blocks;
        if (pread(fd, buf, SMALL, (off_t)(block * SMALL)) != SMALL) {
            perror("random read");
            exit(1);
        }
        done++;
    }
    close(fd);
    free(buf);
    return (void *)(uintptr_t)done;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: blkbench DEVICE\n");
        return 2;
    }
    device = argv[1];
    int fd = open_direct(O_RDONLY);
    off_t size = lseek(fd, 0, SEEK_END);
    close(fd);
    blocks = (uint64_t)size / SMALL;
    unsigned count = (unsigned)(size / BIG > 256 ? 256 : size / BIG);
    double wr = sequential(1, count), rd = sequential(0, count);
    pthread_t threads[THREADS];
    for (unsigned i = 0; i < THREADS; i++)
        pthread_create(&threads[i], NULL, random_reader, (void *)(uintptr_t)(i + 1));
    uint64_t total = 0;
    for (unsigned i = 0; i < THREADS; i++) {
        void *r;
        pthread_join(threads[i], &r);
        total += (uint64_t)(uintptr_t)r;
    }
    printf("L2: bench seq_write_mbps=%.1f seq_read_mbps=%.1f rand_read_iops=%.0f\n", wr, rd,
           total / RANDOM_SECONDS);
    return 0;
}
