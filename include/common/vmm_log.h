/* Warnings from the C core's device paths (a guest that breaks a queue, a
 * BAR it puts over another device), in the Swift logger's line format.
 *
 * Process-wide state, documented: the log fd, set once by the VMM thread
 * before any device runs (standard error until then). */
#ifndef VMM_LOG_H
#define VMM_LOG_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

void vmm_log_set_fd(int fd);
void vmm_log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* At most one line per second per limiter, so a hostile guest cannot fill
 * the log. Zero-initialised. */
struct vmm_ratelimit {
    _Atomic uint64_t next_ns;
};
bool vmm_ratelimit_allow(struct vmm_ratelimit *limit);

#endif
