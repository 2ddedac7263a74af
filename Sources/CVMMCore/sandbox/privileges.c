/* Credential helpers for the privilege drop. */
#include <dirent.h>
#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <stdlib.h>
#include <malloc.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "sandbox/vmm_privileges.h"

int vmm_set_no_new_privs(void)
{
    return prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 ? -errno : 0;
}

int vmm_clear_ambient_caps(void)
{
    return prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 ? -errno : 0;
}

int vmm_get_ids(uid_t uids[3], gid_t gids[3])
{
    if (getresuid(&uids[0], &uids[1], &uids[2]) < 0 || getresgid(&gids[0], &gids[1], &gids[2]) < 0)
        return -errno;
    return 0;
}

static int compare_fds(const void *a, const void *b)
{
    return *(const int *)a - *(const int *)b;
}

static bool kept(int fd, const int *keep, unsigned count)
{
    for (unsigned i = 0; i < count; i++)
        if (keep[i] == fd)
            return true;
    return false;
}

int vmm_close_inherited_fds(const int *keep, unsigned count)
{
    for (int fd = 0; fd <= 2; fd++) {
        if (fcntl(fd, F_GETFD) >= 0 || errno != EBADF)
            continue;
        int null = open("/dev/null", O_RDWR);
        if (null < 0)
            return -errno;
        if (null != fd) {
            /* A lower standard fd was closed too and took this one's place. */
            int ret = dup2(null, fd) < 0 ? -errno : 0;
            close(null);
            if (ret < 0)
                return ret;
        }
    }
    int sorted[64];
    if (count > sizeof(sorted) / sizeof(sorted[0]))
        return -E2BIG;
    for (unsigned i = 0; i < count; i++) {
        if (keep[i] <= 2 || fcntl(keep[i], F_GETFD) < 0)
            return -EBADF;
        sorted[i] = keep[i];
    }
    qsort(sorted, count, sizeof(sorted[0]), compare_fds);
    /* The gaps between the kept ones, then everything above the last. */
    unsigned from = 3;
    bool ranges = true;
    for (unsigned i = 0; i <= count && ranges; i++) {
        unsigned to = i < count ? (unsigned)sorted[i] - 1 : ~0u;
        if (from <= to && close_range(from, to, 0) < 0)
            ranges = false;
        if (i < count)
            from = (unsigned)sorted[i] + 1;
    }
    if (ranges)
        return 0;
    /* Kernels before 5.9: each open descriptor in turn. */
    DIR *dir = opendir("/proc/self/fd");
    if (!dir)
        return -errno;
    int self = dirfd(dir);
    struct dirent *e;
    int fds[1024], n = 0;
    while ((e = readdir(dir)) && n < 1024) {
        int fd = atoi(e->d_name);
        if (fd > 2 && fd != self && !kept(fd, keep, count))
            fds[n++] = fd;
    }
    closedir(dir);
    for (int i = 0; i < n; i++)
        close(fds[i]);
    return 0;
}

int vmm_malloc_policy(void)
{
    /* mallopt answers 1 on success and sets no errno. Fixing the mmap
     * threshold also fixes the trim threshold at its default. */
    return mallopt(M_ARENA_MAX, 1) == 1 && mallopt(M_MMAP_THRESHOLD, 128 * 1024) == 1 ? 0 : -EINVAL;
}
