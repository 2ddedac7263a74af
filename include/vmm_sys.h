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

#endif
