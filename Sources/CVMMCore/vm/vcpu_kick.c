/* The signal that kicks a vCPU thread out of KVM_RUN.
 *
 * Process-wide state, by nature of signals: the handler is installed once
 * and does nothing; its only effect is that KVM_RUN returns EINTR. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>

#include "vm/vm_internal.h"

static pthread_once_t kick_once = PTHREAD_ONCE_INIT;
static int kick_error;

static void kick_handler(int sig) { (void)sig; }

static void kick_install(void)
{
    struct sigaction sa = { .sa_handler = kick_handler };
    sigemptyset(&sa.sa_mask);
    if (sigaction(vmm_kick_signal(), &sa, NULL) < 0)
        kick_error = -errno;
}

int vmm_kick_signal(void) { return SIGRTMIN; }

int vmm_kick_signal_install(void)
{
    pthread_once(&kick_once, kick_install);
    return kick_error;
}
