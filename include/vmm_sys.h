/* Linux headers Swift's Glibc module does not export, for the VMM thread's
 * event loop and privilege handling in Swift. */
#ifndef VMM_SYS_H
#define VMM_SYS_H

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <linux/sched.h> /* CLONE_THREAD, for the seccomp clone rule */

#endif
