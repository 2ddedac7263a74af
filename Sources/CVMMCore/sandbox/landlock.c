/* Landlock wrappers: see vmm_landlock.h. */
#include <errno.h>
#include <fcntl.h>
#include <linux/landlock.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "sandbox/vmm_landlock.h"

/* Rights on files, and the further ones on directories, by ABI version.
 * Device ioctl rights (ABI 5) are left unhandled: descriptors opened
 * before the domain keep working either way, and none are opened after. */
#define FILE_READ LANDLOCK_ACCESS_FS_READ_FILE
#define FILE_WRITE LANDLOCK_ACCESS_FS_WRITE_FILE
#define DIR_READ (LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_READ_DIR)
#define DIR_WRITE (LANDLOCK_ACCESS_FS_WRITE_FILE | LANDLOCK_ACCESS_FS_REMOVE_DIR | \
                   LANDLOCK_ACCESS_FS_REMOVE_FILE | LANDLOCK_ACCESS_FS_MAKE_DIR | \
                   LANDLOCK_ACCESS_FS_MAKE_REG | LANDLOCK_ACCESS_FS_MAKE_SOCK | \
                   LANDLOCK_ACCESS_FS_MAKE_FIFO | LANDLOCK_ACCESS_FS_MAKE_SYM)
#define ALL_V1 ((LANDLOCK_ACCESS_FS_MAKE_SYM << 1) - 1)
#define REFER_V2 (1ull << 13)
#define TRUNCATE_V3 (1ull << 14)

static uint64_t handled(int abi)
{
    return ALL_V1 | (abi >= 2 ? REFER_V2 : 0) | (abi >= 3 ? TRUNCATE_V3 : 0);
}

int vmm_landlock_abi(void)
{
    long v = syscall(SYS_landlock_create_ruleset, NULL, 0, LANDLOCK_CREATE_RULESET_VERSION);
    return v < 0 ? -errno : (int)v;
}

int vmm_landlock_create(int abi, int *ruleset)
{
    struct landlock_ruleset_attr attr = { .handled_access_fs = handled(abi) };
    long fd = syscall(SYS_landlock_create_ruleset, &attr, sizeof(attr), 0);
    if (fd < 0)
        return -errno;
    *ruleset = (int)fd;
    return 0;
}

int vmm_landlock_allow(int ruleset, int abi, const char *path, bool read, bool write)
{
    int fd = open(path, O_PATH | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    struct stat st;
    int ret = fstat(fd, &st) < 0 ? -errno : 0;
    if (ret == 0) {
        bool dir = S_ISDIR(st.st_mode);
        uint64_t rights = (read ? (dir ? DIR_READ : FILE_READ) : 0) |
                          (write ? (dir ? DIR_WRITE : FILE_WRITE) | (abi >= 3 ? TRUNCATE_V3 : 0) : 0);
        if (write && dir && abi >= 2)
            rights |= REFER_V2;
        struct landlock_path_beneath_attr rule = { .allowed_access = rights, .parent_fd = fd };
        if (rights && syscall(SYS_landlock_add_rule, ruleset, LANDLOCK_RULE_PATH_BENEATH, &rule, 0) < 0)
            ret = -errno;
    }
    close(fd);
    return ret;
}

int vmm_landlock_allow_remove(int ruleset, const char *dir)
{
    int fd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    struct landlock_path_beneath_attr rule = { .allowed_access = LANDLOCK_ACCESS_FS_REMOVE_FILE, .parent_fd = fd };
    int ret = syscall(SYS_landlock_add_rule, ruleset, LANDLOCK_RULE_PATH_BENEATH, &rule, 0) < 0 ? -errno : 0;
    close(fd);
    return ret;
}

int vmm_landlock_enforce(int ruleset)
{
    int ret = syscall(SYS_landlock_restrict_self, ruleset, 0) < 0 ? -errno : 0;
    close(ruleset);
    return ret;
}
