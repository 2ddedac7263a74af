/* The lab's vsock tool inside L2 (static, no libc beyond the kernel's ABI):
 *   vsocktest listen PORT        one stream in: socket to stdout, stdin to socket
 *   vsocktest connect CID PORT   one stream out, the same copying
 *   vsocktest echo PORT N        N streams in at once, each echoed back
 *                                (a process each), then exits
 *   vsocktest hold CID PORT      connects, sends nothing, reads nothing,
 *                                until killed (a peer that stops reading)
 * Exit 0 on a clean end, 2 and a line on stderr for a refused or reset stream. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/vm_sockets.h>

static int fail(const char *what)
{
    fprintf(stderr, "vsocktest: %s: %s\n", what, strerror(errno));
    return 2;
}

static int write_all(int fd, const char *p, ssize_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, (size_t)n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= w;
    }
    return 0;
}

/* stdin → socket and socket → stdout until the socket's end. */
static int pump(int s)
{
    static char buf[65536];
    struct pollfd p[2] = { { .fd = 0, .events = POLLIN }, { .fd = s, .events = POLLIN } };
    int in_open = 1;
    for (;;) {
        if (poll(p, 2, -1) < 0 && errno != EINTR)
            return fail("poll");
        if (in_open && (p[0].revents & (POLLIN | POLLHUP))) {
            ssize_t n = read(0, buf, sizeof(buf));
            if (n <= 0) {
                in_open = 0;
                p[0].fd = -1;
                shutdown(s, SHUT_WR);
            } else if (write_all(s, buf, n) < 0) {
                return fail("send");
            }
        }
        if (p[1].revents & (POLLIN | POLLHUP | POLLERR)) {
            ssize_t n = read(s, buf, sizeof(buf));
            if (n < 0)
                return fail("receive");
            if (n == 0)
                return 0;
            if (write_all(1, buf, n) < 0)
                return fail("stdout");
        }
    }
}

static int echo(int s)
{
    static char buf[65536];
    ssize_t n;
    while ((n = read(s, buf, sizeof(buf))) > 0)
        if (write_all(s, buf, n) < 0)
            return fail("echo send");
    shutdown(s, SHUT_WR);
    return n < 0 ? fail("echo receive") : 0;
}

static int listening(unsigned port)
{
    struct sockaddr_vm addr = { .svm_family = AF_VSOCK, .svm_cid = VMADDR_CID_ANY, .svm_port = port };
    int s = socket(AF_VSOCK, SOCK_STREAM, 0);
    if (s < 0 || bind(s, (struct sockaddr *)&addr, sizeof(addr)) < 0 || listen(s, 64) < 0)
        return -1;
    return s;
}

int main(int argc, char **argv)
{
    if (argc == 3 && !strcmp(argv[1], "listen")) {
        int l = listening((unsigned)atoi(argv[2]));
        if (l < 0)
            return fail("listen");
        fprintf(stderr, "vsocktest: listening\n");
        int s = accept(l, NULL, NULL);
        return s < 0 ? fail("accept") : pump(s);
    }
    if (argc == 4 && (!strcmp(argv[1], "connect") || !strcmp(argv[1], "hold"))) {
        struct sockaddr_vm addr = { .svm_family = AF_VSOCK, .svm_cid = (unsigned)atoi(argv[2]),
                                    .svm_port = (unsigned)atoi(argv[3]) };
        int s = socket(AF_VSOCK, SOCK_STREAM, 0);
        if (s < 0 || connect(s, (struct sockaddr *)&addr, sizeof(addr)) < 0)
            return fail("connect");
        if (!strcmp(argv[1], "hold"))
            for (;;)
                pause();
        return pump(s);
    }
    if (argc == 4 && !strcmp(argv[1], "echo")) {
        int l = listening((unsigned)atoi(argv[2]));
        if (l < 0)
            return fail("listen");
        int n = atoi(argv[3]);
        fprintf(stderr, "vsocktest: echoing\n");
        for (int i = 0; i < n; i++) {
            int s = accept(l, NULL, NULL);
            if (s < 0)
                return fail("accept");
            if (fork() == 0)
                _exit(echo(s));
            close(s);
        }
        int status, bad = 0;
        while (wait(&status) > 0)
            bad += !WIFEXITED(status) || WEXITSTATUS(status);
        printf("vsocktest: %d streams echoed, %d failed\n", n, bad);
        return bad ? 2 : 0;
    }
    fprintf(stderr, "usage: vsocktest listen PORT | connect CID PORT | echo PORT N | hold CID PORT\n");
    return 1;
}
