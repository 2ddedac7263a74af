/* Credential helpers for the privilege drop. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "vmm_privileges.h"

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

int vmm_close_inherited_fds(void)
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
    if (close_range(3, ~0u, 0) == 0)
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
        if (fd > 2 && fd != self)
            fds[n++] = fd;
    }
    closedir(dir);
    for (int i = 0; i < n; i++)
        close(fds[i]);
    return 0;
}
