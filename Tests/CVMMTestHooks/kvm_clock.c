/* Test-only: the guest clock KVM keeps for a VM; see vmm_test_hooks.h. */
#include <errno.h>
#include <linux/kvm.h>
#include <sys/ioctl.h>

#include "vmm_test_hooks.h"

int vmm_test_kvm_clock(int vm_fd, unsigned long long *ns)
{
    struct kvm_clock_data clock = { 0 };
    if (ioctl(vm_fd, KVM_GET_CLOCK, &clock) < 0)
        return -errno;
    *ns = clock.clock;
    return 0;
}
