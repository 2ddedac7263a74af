/* The process-credential calls Swift cannot reach (variadic prctl,
 * _GNU_SOURCE-only getres[ug]id). */
#ifndef VMM_PRIVILEGES_H
#define VMM_PRIVILEGES_H

#include <sys/types.h>

/* PR_SET_NO_NEW_PRIVS: no later execve can gain privileges. */
int vmm_set_no_new_privs(void);
/* Empties the ambient capability set. */
int vmm_clear_ambient_caps(void);
/* Real, effective and saved ids. */
int vmm_get_ids(uid_t uids[3], gid_t gids[3]);

#endif
