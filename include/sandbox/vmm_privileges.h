/* The process-credential calls Swift cannot reach (variadic prctl,
 * _GNU_SOURCE-only getres[ug]id). */
#ifndef VMM_PRIVILEGES_H
#define VMM_PRIVILEGES_H

#include <sys/types.h>

/* First thing at start: every descriptor the parent left open beyond 0-2
 * and the `count` ones in `keep` (handed over on purpose: `--net fd=`) is
 * closed, so a guest that escaped into the VMM finds none of them; a
 * closed 0, 1 or 2 is reopened on /dev/null so that no later open lands
 * there. -EBADF if a descriptor to keep is not open. */
int vmm_close_inherited_fds(const int *keep, unsigned count);

/* Every thread allocates from glibc's main arena (M_ARENA_MAX 1), so that
 * no filtered thread makes glibc build, grow or shrink a heap of its own
 * (mmap, mprotect, and an open of /proc/sys/vm/overcommit_memory at the
 * first shrink). And a chunk of 128 KiB or more is always its own mapping,
 * given back when freed: glibc otherwise raises that threshold after the
 * first such free, and what a guest or client made the VMM allocate by the
 * hundred (a slow vsock client's 256 KiB each) stays in the heap after it
 * is freed. Call before any other thread starts. */
int vmm_malloc_policy(void);

/* PR_SET_NO_NEW_PRIVS: no later execve can gain privileges. */
int vmm_set_no_new_privs(void);
/* Empties the ambient capability set. */
int vmm_clear_ambient_caps(void);
/* Real, effective and saved ids. */
int vmm_get_ids(uid_t uids[3], gid_t gids[3]);

#endif
