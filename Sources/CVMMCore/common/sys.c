/* Thin wrappers over glibc calls Swift cannot see without _GNU_SOURCE. */
#include <errno.h>
#include <pthread.h>
#include <sys/socket.h>

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
