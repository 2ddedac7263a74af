/* Test-only: confines a forked child with the core's Landlock wrappers and
 * reports what it can still open. */
#include <errno.h>
#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sandbox/vmm_landlock.h"
#include "vmm_test_hooks.h"

int vmm_test_landlock(const char *allowed_dir, const char *inside, const char *outside, int results[2])
{
    int pipefd[2];
    if (pipe(pipefd) < 0)
        return -errno;
    pid_t pid = fork();
    if (pid < 0)
        return -errno;
    if (pid == 0) {
        int r[2] = { -1000, -1000 }, ruleset, abi = vmm_landlock_abi();
        if (abi >= 1 && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0 && vmm_landlock_create(abi, &ruleset) == 0 &&
            vmm_landlock_allow(ruleset, abi, allowed_dir, true, false) == 0 && vmm_landlock_enforce(ruleset) == 0) {
            int fd = open(inside, O_RDONLY);
            r[0] = fd < 0 ? -errno : 0;
            fd = open(outside, O_RDONLY);
            r[1] = fd < 0 ? -errno : 0;
        }
        ssize_t ignored = write(pipefd[1], r, sizeof(r));
        (void)ignored;
        _exit(0);
    }
    close(pipefd[1]);
    ssize_t n = read(pipefd[0], results, 2 * sizeof(int));
    close(pipefd[0]);
    waitpid(pid, NULL, 0);
    return n == 2 * sizeof(int) ? 0 : -EIO;
}
