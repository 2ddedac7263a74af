/* Linux headers Swift's Glibc module does not export, for the VMM thread's
 * event loop and privilege handling in Swift. */
#ifndef VMM_SYS_H
#define VMM_SYS_H

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <fcntl.h>
#include <linux/sched.h> /* CLONE_THREAD, for the seccomp clone rule */
#include <sys/resource.h>

/* glibc names this limit through an enum Swift's Glibc does not export. */
enum { VMM_RLIMIT_MEMLOCK = RLIMIT_MEMLOCK };

/* fcntl's open-file-description lock, which Swift's Glibc hides behind
 * _GNU_SOURCE: a disk image's lock belongs to its fd, not the process. */
enum { VMM_F_OFD_SETLK = 37 };
#ifdef F_OFD_SETLK
_Static_assert(VMM_F_OFD_SETLK == F_OFD_SETLK, "F_OFD_SETLK");
#endif

/* accept4, pthread_setname_np and posix_openpt need _GNU_SOURCE or
 * _XOPEN_SOURCE, which Swift's Glibc does not define (sys.c). */
/* A client of listening socket `fd`, non-blocking and close-on-exec, or -errno. */
int vmm_accept_client(int fd);
/* Names the calling thread (at most 15 bytes show). */
int vmm_name_thread(const char *name);
/* A new pseudo-terminal: its main side non-blocking, its other side opened
 * and raw, its path in `path`. 0 or -errno; nothing stays open on failure. */
#include <stddef.h>
int vmm_open_pty(int *main_fd, int *peer_fd, char *path, size_t path_size);

/* Every thread the VMM starts (vCPUs, devices, the API) gets this much
 * stack, not glibc's 8 MiB: below 2 MiB, no transparent huge page can back
 * it, where a host with THP "always" made a busy vCPU's stack 2 MiB of
 * resident memory per VM (bench/memory.py's Linux guests). The deepest
 * use is a few tens of KiB. */
enum { VMM_THREAD_STACK_SIZE = 1 << 20 };

/* Starts a thread with that stack and every signal blocked in it: process
 * signals (SIGTERM, SIGINT...) go to the VMM thread's signalfd, never to a
 * vCPU, device or API thread. 0 or -errno. */
#include <pthread.h>
int vmm_thread_start(pthread_t *thread, void *(*fn)(void *), void *arg);

/* Gives the heap's free pages back to the host (malloc_trim, which
 * malloc.h declares and Swift's Glibc does not export). */
void vmm_heap_trim(void);

#endif
