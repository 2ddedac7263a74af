/* Credential helpers for the privilege drop. */
#include <errno.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "vmm_privileges.h"

int vmm_set_no_new_privs(void)
{
    return prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 ? -errno : 0;
}

int vmm_clear_ambient_caps(void)
{
    return prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 ? -errno : 0;
}

int vmm_get_ids(uid_t uids[3], gid_t gids[3])
{
    if (getresuid(&uids[0], &uids[1], &uids[2]) < 0 || getresgid(&gids[0], &gids[1], &gids[2]) < 0)
        return -errno;
    return 0;
}
