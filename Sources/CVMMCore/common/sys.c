/* Thin wrappers over glibc calls Swift cannot see without _GNU_SOURCE. */
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <termios.h>
#include <unistd.h>

#include "common/vmm_sys.h"

int vmm_accept_client(int fd)
{
    int client = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    return client < 0 ? -errno : client;
}

int vmm_name_thread(const char *name)
{
    return -pthread_setname_np(pthread_self(), name);
}

int vmm_open_pty(int *main_fd, int *peer_fd, char *path, size_t path_size)
{
    int main = posix_openpt(O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
    if (main < 0)
        return -errno;
    int peer = -1;
    if (grantpt(main) < 0 || unlockpt(main) < 0 || ptsname_r(main, path, path_size) != 0 ||
        (peer = open(path, O_RDWR | O_NOCTTY | O_CLOEXEC)) < 0) {
        int saved = -errno;
        close(main);
        return saved;
    }
    struct termios raw;
    if (tcgetattr(peer, &raw) == 0) {
        cfmakeraw(&raw);
        tcsetattr(peer, TCSANOW, &raw);
    }
    *main_fd = main;
    *peer_fd = peer;
    return 0;
}

void vmm_heap_trim(void) { malloc_trim(0); }
