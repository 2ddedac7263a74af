/* The process-credential calls Swift cannot reach (variadic prctl,
 * _GNU_SOURCE-only getres[ug]id). */
#ifndef VMM_PRIVILEGES_H
#define VMM_PRIVILEGES_H

#include <sys/types.h>

/* First thing at start: every descriptor the parent left open beyond 0-2
 * is closed (a guest that escaped into the VMM finds none of them), and a
 * closed 0, 1 or 2 is reopened on /dev/null so that no later open lands
 * there. */
int vmm_close_inherited_fds(void);

/* PR_SET_NO_NEW_PRIVS: no later execve can gain privileges. */
int vmm_set_no_new_privs(void);
/* Empties the ambient capability set. */
int vmm_clear_ambient_caps(void);
/* Real, effective and saved ids. */
int vmm_get_ids(uid_t uids[3], gid_t gids[3]);

#endif
