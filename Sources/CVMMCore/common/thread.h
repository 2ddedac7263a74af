/* Private: starting the core's threads. */
#ifndef CVMM_THREAD_H
#define CVMM_THREAD_H

#include <pthread.h>

/* pthread_create with every signal blocked in the new thread: process
 * signals (SIGTERM, SIGINT...) go to the VMM thread's signalfd, never to a
 * vCPU or device thread. 0 or -errno. */
int vmm_thread_start(pthread_t *thread, void *(*fn)(void *), void *arg);

#endif
