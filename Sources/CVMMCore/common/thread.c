/* See vmm_sys.h. */
#include <signal.h>

#include "common/vmm_sys.h"

int vmm_thread_start(pthread_t *thread, void *(*fn)(void *), void *arg)
{
    pthread_attr_t attr;
    int ret = -pthread_attr_init(&attr);
    if (ret < 0)
        return ret;
    ret = -pthread_attr_setstacksize(&attr, VMM_THREAD_STACK_SIZE);
    if (ret == 0) {
        sigset_t all, old;
        sigfillset(&all);
        pthread_sigmask(SIG_BLOCK, &all, &old);
        ret = -pthread_create(thread, &attr, fn, arg);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
    }
    pthread_attr_destroy(&attr);
    return ret;
}
