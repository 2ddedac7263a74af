/* C-side warnings, rate-limited where a guest can trigger them. */
#include <stdarg.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include "common/vmm_log.h"

static _Atomic int log_fd = STDERR_FILENO;

void vmm_log_set_fd(int fd) { atomic_store(&log_fd, fd); }

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void vmm_log_warn(const char *fmt, ...)
{
    char line[512];
    uint64_t ms = now_ns() / 1000000u;
    int n = snprintf(line, sizeof(line), "cloud-hypervisor: %llu.%03llu warning: ",
                     (unsigned long long)(ms / 1000), (unsigned long long)(ms % 1000));
    va_list ap;
    va_start(ap, fmt);
    if (n > 0 && (size_t)n < sizeof(line))
        n += vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
    va_end(ap);
    if (n <= 0)
        return;
    if ((size_t)n >= sizeof(line) - 1)
        n = (int)sizeof(line) - 2;
    line[n++] = '\n';
    ssize_t ignored = write(atomic_load(&log_fd), line, (size_t)n);
    (void)ignored;
}

bool vmm_ratelimit_allow(struct vmm_ratelimit *limit)
{
    uint64_t now = now_ns();
    uint64_t next = atomic_load(&limit->next_ns);
    return now >= next && atomic_compare_exchange_strong(&limit->next_ns, &next, now + 1000000000u);
}
