/* Test-only: provokes seccomp violations. Built into the test bundle only,
 * never into cloud-hypervisor. */
#ifndef VMM_TEST_HOOKS_H
#define VMM_TEST_HOOKS_H

#include "sandbox/vmm_seccomp.h"

struct vmm_test_violation {
    int exit_code;      /* -1 if killed by a signal */
    int signal;         /* the signal, if killed */
    long result;        /* what the forbidden syscall returned, or -errno */
    int child_pid;
    char stderr_text[512];
};

/* Forks; the child installs `program` and calls socket(AF_UNIX, SOCK_STREAM, 0),
 * which no VMM thread may do. */
int vmm_test_violate(const struct vmm_seccomp_program *program, struct vmm_test_violation *out);
/* The same with terminal `tty` put in raw mode by the child first and
 * registered for the SIGSYS report to restore (vmm_seccomp_trap_terminal). */
int vmm_test_violate_on_terminal(const struct vmm_seccomp_program *program, int tty, struct vmm_test_violation *out);

/* Forks; the child installs `program` and calls tgkill(pid, pid, 0): a
 * signal check that a filter allows towards its own VMM's pid only. */
int vmm_test_tgkill(const struct vmm_seccomp_program *program, int pid, struct vmm_test_violation *out);
/* Forks; the child installs `program` and calls sched_setscheduler(pid,
 * policy, {0}) on itself (pid 0) or another (`pid`). */
int vmm_test_sched_setscheduler(const struct vmm_seccomp_program *program, int pid, int policy,
                                struct vmm_test_violation *out);

/* Forks a child confined with Landlock to reading beneath `allowed_dir`
 * (the core's wrappers); results[0] is what opening `inside` gave (0 or
 * -errno), results[1] the same for `outside`. */
int vmm_test_landlock(const char *allowed_dir, const char *inside, const char *outside, int results[2]);

struct vmm_test_bus_churn {
    int status;              /* 0, or -errno if the child could not run it */
    unsigned long heap_before, heap_middle, heap_after; /* bytes malloc holds */
    unsigned long lookups, wrong;
};

/* Forks; the child moves one range of a bus back and forth `changes`
 * times while `readers` threads (at most 16) look it up, and reports its
 * heap before, halfway and after, and lookups that found the range where
 * it was not or missed it where it was. */
int vmm_test_bus_churn(unsigned changes, unsigned readers, struct vmm_test_bus_churn *out);

/* The guest's clock (KVM_GET_CLOCK) of the VM `vm_fd`, in ns; -errno. */
int vmm_test_kvm_clock(int vm_fd, unsigned long long *ns);

/* A pseudo-terminal pair, for tests of the VMM on a terminal. */
int vmm_test_openpty(int *master, int *slave);

#endif
