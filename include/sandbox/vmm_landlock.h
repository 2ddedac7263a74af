/* Landlock (linux/landlock.h): confining the VMM's file access to the
 * paths its configuration names. glibc has no wrappers for its three
 * system calls; these are thin ones. A domain applies to the calling thread
 * and every thread it starts afterwards. */
#ifndef VMM_LANDLOCK_H
#define VMM_LANDLOCK_H

#include <stdbool.h>

/* The kernel's Landlock ABI version (>= 1), -EOPNOTSUPP if Landlock is
 * built in but not enabled, -ENOSYS if the kernel has none. */
int vmm_landlock_abi(void);
/* A ruleset handling every file-system right the ABI knows. */
int vmm_landlock_create(int abi, int *ruleset);
/* Grants reading and/or writing `path` (a file, or a directory and all
 * beneath it). -ENOENT for a path that does not exist. */
int vmm_landlock_allow(int ruleset, int abi, const char *path, bool read, bool write);
/* Grants removing files in directory `dir`, and nothing else there: the
 * API socket's file goes when the VMM ends. */
int vmm_landlock_allow_remove(int ruleset, const char *dir);
/* Confines the calling thread (no_new_privs must be set) and closes the ruleset. */
int vmm_landlock_enforce(int ruleset);

#endif
