/* A console on a UNIX socket (`--serial socket=`, `--console socket=`):
 * the device writes into one pipe and reads from another, as it would a
 * terminal; this relay thread moves bytes between those pipes and whoever
 * is connected. One client at a time, the newest one: a reconnect takes
 * over. Without a client, or with one that does not read, output is
 * dropped, so a guest never waits on a console. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/vmm_sys.h"
#include "platform/vmm_console_socket.h"

enum { TAG_LISTEN, TAG_CLIENT, TAG_OUTPUT, TAG_STOP };

struct vmm_console_socket {
    int listen_fd;           /* not owned */
    int out_r, out_w;        /* device → client */
    int in_r, in_w;          /* client → device */
    int client;
    int epoll_fd, stop_fd;
    pthread_t thread;
    bool started;
    vmm_vcpu_thread_init_fn init;
    void *init_opaque;
    char name[16];
};

static void close_fd(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

static int watch(struct vmm_console_socket *c, int fd, uint64_t tag)
{
    struct epoll_event ev = { .events = EPOLLIN, .data.u64 = tag };
    return epoll_ctl(c->epoll_fd, EPOLL_CTL_ADD, fd, &ev) < 0 ? -errno : 0;
}

static void drop_client(struct vmm_console_socket *c)
{
    close_fd(&c->client); /* closing takes it off the epoll set */
}

static void accept_client(struct vmm_console_socket *c)
{
    int fd = accept4(c->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0)
        return;
    drop_client(c); /* the newest client takes over */
    c->client = fd;
    if (watch(c, fd, TAG_CLIENT) < 0)
        drop_client(c);
}

/* The guest's output to the client; without one, or past what it takes
 * now, it is dropped. */
static void to_client(struct vmm_console_socket *c)
{
    char buf[4096];
    ssize_t n = read(c->out_r, buf, sizeof(buf));
    if (n <= 0 || c->client < 0)
        return;
    if (send(c->client, buf, (size_t)n, MSG_DONTWAIT | MSG_NOSIGNAL) < 0 && errno != EAGAIN && errno != EINTR)
        drop_client(c);
}

/* The client's typing to the device; a client that is gone is let go. */
static void from_client(struct vmm_console_socket *c)
{
    char buf[4096];
    ssize_t n = read(c->client, buf, sizeof(buf));
    if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN)) {
        drop_client(c);
        return;
    }
    if (n > 0) {
        ssize_t ignored = write(c->in_w, buf, (size_t)n); /* a device that does not read drops it */
        (void)ignored;
    }
}

static void *run(void *arg)
{
    struct vmm_console_socket *c = arg;
    pthread_setname_np(pthread_self(), c->name);
    if (c->init && c->init(c->init_opaque, 0) < 0)
        return NULL; /* unconfined it does nothing: the console stays silent */
    struct epoll_event events[4];
    for (;;) {
        int n = epoll_wait(c->epoll_fd, events, 4, -1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return NULL;
        for (int i = 0; i < n; i++) {
            switch (events[i].data.u64) {
            case TAG_STOP:
                return NULL;
            case TAG_LISTEN:
                accept_client(c);
                break;
            case TAG_OUTPUT:
                to_client(c);
                break;
            case TAG_CLIENT:
                if (c->client >= 0)
                    from_client(c);
                break;
            }
        }
    }
}

int vmm_console_socket_create(int listen_fd, const char *name, struct vmm_console_socket **out)
{
    struct vmm_console_socket *c = calloc(1, sizeof(*c));
    if (!c)
        return -ENOMEM;
    c->listen_fd = listen_fd;
    c->client = c->epoll_fd = c->stop_fd = -1;
    snprintf(c->name, sizeof(c->name), "%s", name);
    int out_pipe[2] = { -1, -1 }, in_pipe[2] = { -1, -1 };
    int ret = 0;
    /* The device's ends never block: a full pipe drops, an empty one waits in epoll. */
    if (pipe2(out_pipe, O_CLOEXEC | O_NONBLOCK) < 0 || pipe2(in_pipe, O_CLOEXEC | O_NONBLOCK) < 0)
        ret = -errno;
    c->out_r = out_pipe[0], c->out_w = out_pipe[1], c->in_r = in_pipe[0], c->in_w = in_pipe[1];
    if (ret == 0 && ((c->epoll_fd = epoll_create1(EPOLL_CLOEXEC)) < 0 ||
                     (c->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0))
        ret = -errno;
    if (ret == 0)
        ret = watch(c, listen_fd, TAG_LISTEN);
    if (ret == 0)
        ret = watch(c, c->out_r, TAG_OUTPUT);
    if (ret == 0)
        ret = watch(c, c->stop_fd, TAG_STOP);
    if (ret < 0) {
        vmm_console_socket_destroy(c);
        return ret;
    }
    *out = c;
    return 0;
}

int vmm_console_socket_output_fd(const struct vmm_console_socket *c) { return c->out_w; }

int vmm_console_socket_input_fd(const struct vmm_console_socket *c) { return c->in_r; }

int vmm_console_socket_start(struct vmm_console_socket *c, vmm_vcpu_thread_init_fn init, void *opaque)
{
    if (c->started)
        return 0;
    c->init = init;
    c->init_opaque = opaque;
    int ret = vmm_thread_start(&c->thread, run, c);
    c->started = ret == 0;
    return ret;
}

void vmm_console_socket_destroy(struct vmm_console_socket *c)
{
    if (!c)
        return;
    if (c->started) {
        uint64_t one = 1;
        while (write(c->stop_fd, &one, sizeof(one)) < 0 && errno == EINTR)
            ;
        pthread_join(c->thread, NULL);
    }
    close_fd(&c->client);
    close_fd(&c->out_r);
    close_fd(&c->out_w);
    close_fd(&c->in_r);
    close_fd(&c->in_w);
    close_fd(&c->epoll_fd);
    close_fd(&c->stop_fd);
    free(c);
}
