/* Test-only violation hook; see vmm_test_hooks.h. */
#include <errno.h>
#include <sched.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include "vmm_test_hooks.h"

static int confined_call(const struct vmm_seccomp_program *program, int tty, long nr, long a0, long a1, long a2,
                         struct vmm_test_violation *out);

int vmm_test_violate(const struct vmm_seccomp_program *program, struct vmm_test_violation *out)
{
    return vmm_test_violate_on_terminal(program, -1, out);
}

int vmm_test_violate_on_terminal(const struct vmm_seccomp_program *program, int tty, struct vmm_test_violation *out)
{
    return confined_call(program, tty, SYS_socket, AF_UNIX, SOCK_STREAM, 0, out);
}

int vmm_test_tgkill(const struct vmm_seccomp_program *program, int pid, struct vmm_test_violation *out)
{
    return confined_call(program, -1, SYS_tgkill, pid, pid, 0, out);
}

int vmm_test_sched_setscheduler(const struct vmm_seccomp_program *program, int pid, int policy,
                                struct vmm_test_violation *out)
{
    static const struct sched_param none = { 0 };
    return confined_call(program, -1, SYS_sched_setscheduler, pid, policy, (long)&none, out);
}

static int confined_call(const struct vmm_seccomp_program *program, int tty, long nr, long a0, long a1, long a2,
                         struct vmm_test_violation *out)
{
    int err_pipe[2], result_pipe[2];
    if (pipe(err_pipe) < 0 || pipe(result_pipe) < 0)
        return -errno;
    pid_t pid = fork();
    if (pid < 0)
        return -errno;
    if (pid == 0) {
        /* Only async-signal-safe calls from here on: the parent has threads. */
        dup2(err_pipe[1], STDERR_FILENO);
        struct termios saved, raw;
        if (tty >= 0 && tcgetattr(tty, &saved) == 0) {
            raw = saved;
            cfmakeraw(&raw);
            tcsetattr(tty, TCSANOW, &raw);
            vmm_seccomp_trap_terminal(tty, &saved);
        }
        if (vmm_seccomp_install(program) < 0)
            _exit(99);
        long r = syscall(nr, a0, a1, a2);
        if (r < 0)
            r = -errno;
        ssize_t ignored = write(result_pipe[1], &r, sizeof(r));
        (void)ignored;
        _exit(0);
    }
    close(err_pipe[1]);
    close(result_pipe[1]);
    memset(out, 0, sizeof(*out));
    out->child_pid = pid;
    ssize_t n = read(err_pipe[0], out->stderr_text, sizeof(out->stderr_text) - 1);
    if (n > 0)
        out->stderr_text[n] = 0;
    if (read(result_pipe[0], &out->result, sizeof(out->result)) != sizeof(out->result))
        out->result = -1;
    close(err_pipe[0]);
    close(result_pipe[0]);
    int status;
    if (waitpid(pid, &status, 0) < 0)
        return -errno;
    out->exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    out->signal = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
    return 0;
}
