/* Test-only: a pseudo-terminal pair; see vmm_test_hooks.h. */
#include <errno.h>
#include <pty.h>
#include <stddef.h>

#include "vmm_test_hooks.h"

int vmm_test_openpty(int *master, int *slave)
{
    return openpty(master, slave, NULL, NULL, NULL) < 0 ? -errno : 0;
}
