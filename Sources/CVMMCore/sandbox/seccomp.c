/* Seccomp installation per thread and the SIGSYS report.
 *
 * Process-wide state, documented: the syscall name table and the SIGSYS
 * handler are set once by the VMM thread before any filter exists; the
 * thread kind is thread-local so the handler can say who violated. */
#include <errno.h>
#include <linux/kvm.h>
#include <linux/vfio.h>
#include <linux/seccomp.h>
#include <linux/if_tun.h>
#include <linux/sockios.h>
#include <signal.h>
#include <termios.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "sandbox/vmm_privileges.h"
#include "sandbox/vmm_seccomp.h"

static const char *const *syscall_names;
static unsigned syscall_name_count;
/* Set by the VMM thread before any filter exists, read by the handler. */
static int trap_terminal_fd = -1;
static struct termios trap_terminal;
static __thread int thread_kind = -1;

static const char *const kind_names[VMM_THREAD_KINDS] = {
    "vmm", "vcpu", "virtio-blk", "virtio-console", "virtio-rng", "virtio-net", "api", "virtio-vsock", "vhost-user", "console-socket",
    "virtio-iommu",
};

/* What vcpu.c, vcpu_exit.c and vcpu_dump.c issue once a vCPU runs, and
 * what guest PCI accesses served on it need: moving a virtio BAR moves its
 * queues' ioeventfds (pci.c, virtio_pci.c), and unmasking an MSI-X vector
 * commits its route (msix.c, gsi.c). */
static const unsigned long vcpu_ioctls[] = {
    KVM_RUN, KVM_GET_REGS, KVM_GET_SREGS, KVM_IOEVENTFD, KVM_SET_GSI_ROUTING,
    /* An assigned device (vfio_pci.c): a BAR move moves its memory slots;
     * the guest enabling MSI or MSI-X hands VFIO the vectors' eventfds;
     * masking an MSI-X vector detaches its eventfd from KVM (msix.c). */
    KVM_SET_USER_MEMORY_REGION, VFIO_DEVICE_SET_IRQS, KVM_IRQFD,
};

/* What a boot issues on the VMM thread (vm.c, memory.c, vcpu.c, cpuid.c,
 * msr.c, pvh_entry.c, irq.c): a guest reset builds a new VM under the filter. */
static const unsigned long vmm_ioctls[] = {
    KVM_CHECK_EXTENSION, KVM_GET_VCPU_MMAP_SIZE, KVM_CREATE_VM, KVM_SET_TSS_ADDR,
    KVM_CREATE_IRQCHIP, KVM_CREATE_PIT2, KVM_SET_USER_MEMORY_REGION, KVM_CREATE_VCPU,
    KVM_GET_SUPPORTED_CPUID, KVM_SET_CPUID2, KVM_GET_SREGS, KVM_SET_SREGS, KVM_SET_REGS,
    KVM_IRQFD, KVM_SET_MSRS, KVM_IOEVENTFD, KVM_SET_GSI_ROUTING,
    /* Assigned devices on every boot (vfio.c, vfio_pci.c). */
    KVM_CREATE_DEVICE, KVM_SET_DEVICE_ATTR, VFIO_IOMMU_MAP_DMA, VFIO_IOMMU_UNMAP_DMA,
    VFIO_DEVICE_GET_INFO, VFIO_DEVICE_GET_REGION_INFO, VFIO_DEVICE_GET_IRQ_INFO, VFIO_DEVICE_RESET,
    /* vm.pause holds the guest's clock, vm.resume gives it back (vcpu_pause.c). */
    KVM_GET_CLOCK, KVM_SET_CLOCK,
};

/* What a hot-added device needs on the VMM thread, with the API: a VFIO
 * container and group set up and the device opened (vfio.c); a tap opened
 * or adopted and configured (tap.c), as Cloud Hypervisor's VMM thread may. */
static const unsigned long hotplug_ioctls[] = {
    VFIO_GET_API_VERSION, VFIO_CHECK_EXTENSION, VFIO_GROUP_GET_STATUS, VFIO_GROUP_SET_CONTAINER,
    VFIO_SET_IOMMU, VFIO_GROUP_UNSET_CONTAINER /* a failed VFIO_SET_IOMMU undone */, VFIO_GROUP_GET_DEVICE_FD,
    TUNSETIFF, TUNGETIFF, TUNSETVNETHDRSZ, SIOCSIFADDR, SIOCSIFNETMASK, SIOCSIFHWADDR, SIOCSIFMTU,
    SIOCGIFMTU, SIOCGIFFLAGS, SIOCSIFFLAGS, SIOCGIFINDEX /* if_nametoindex: does the tap exist */,
};

unsigned vmm_seccomp_hotplug_ioctls(const unsigned long **out)
{
    *out = hotplug_ioctls;
    return sizeof(hotplug_ioctls) / sizeof(hotplug_ioctls[0]);
}

/* What vm.snapshot reads of KVM on the VMM thread and a restore
 * (vm.restore, --restore) writes back (vcpu_state.c); a migration's
 * source reads the dirty log (dirty_log.c). */
static const unsigned long state_ioctls[] = {
    KVM_GET_DIRTY_LOG, KVM_GET_CPUID2,
    KVM_GET_MSR_INDEX_LIST, KVM_GET_MSRS, KVM_GET_XSAVE, KVM_SET_XSAVE, KVM_GET_XCRS, KVM_SET_XCRS,
    KVM_GET_LAPIC, KVM_SET_LAPIC, KVM_GET_VCPU_EVENTS, KVM_SET_VCPU_EVENTS, KVM_GET_MP_STATE, KVM_SET_MP_STATE,
    KVM_GET_DEBUGREGS, KVM_SET_DEBUGREGS, KVM_GET_IRQCHIP, KVM_SET_IRQCHIP, KVM_GET_PIT2, KVM_SET_PIT2,
};

unsigned vmm_seccomp_state_ioctls(const unsigned long **out)
{
    *out = state_ioctls;
    return sizeof(state_ioctls) / sizeof(state_ioctls[0]);
}

/* virtio_net.c: what the driver negotiates (offloads) and chooses (queue pairs). */
static const unsigned long net_ioctls[] = { TUNSETOFFLOAD, TUNSETQUEUE };

/* iommu.c: the guest's mappings mirrored in assigned devices' containers. */
static const unsigned long iommu_ioctls[] = { VFIO_IOMMU_MAP_DMA, VFIO_IOMMU_UNMAP_DMA };

const char *vmm_thread_kind_name(enum vmm_thread_kind kind)
{
    return (unsigned)kind < VMM_THREAD_KINDS ? kind_names[kind] : "unknown";
}

unsigned vmm_seccomp_ioctls(enum vmm_thread_kind kind, const unsigned long **out)
{
    switch (kind) {
    case VMM_THREAD_VCPU:
        *out = vcpu_ioctls;
        return sizeof(vcpu_ioctls) / sizeof(vcpu_ioctls[0]);
    case VMM_THREAD_VMM:
        *out = vmm_ioctls;
        return sizeof(vmm_ioctls) / sizeof(vmm_ioctls[0]);
    case VMM_THREAD_VIRTIO_NET:
        *out = net_ioctls;
        return sizeof(net_ioctls) / sizeof(net_ioctls[0]);
    case VMM_THREAD_VIRTIO_IOMMU:
        *out = iommu_ioctls;
        return sizeof(iommu_ioctls) / sizeof(iommu_ioctls[0]);
    default: /* the other device threads issue no ioctl */
        *out = NULL;
        return 0;
    }
}

int vmm_seccomp_install(const struct vmm_seccomp_program *program)
{
    struct sock_fprog prog = {
        .len = program->length,
        .filter = (struct sock_filter *)program->filter,
    };
    int ret = vmm_set_no_new_privs();
    if (ret < 0)
        return ret;
    if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) < 0)
        return -errno;
    thread_kind = (int)program->kind;
    return 0;
}

int vmm_seccomp_thread_init(void *opaque, unsigned index)
{
    (void)index;
    return vmm_seccomp_install(opaque);
}

/* Appends `s` to buf at *pos; async-signal-safe. */
static void append(char *buf, size_t size, size_t *pos, const char *s)
{
    while (*s && *pos + 1 < size)
        buf[(*pos)++] = *s++;
}

static void append_number(char *buf, size_t size, size_t *pos, long n)
{
    char digits[24];
    int i = 0;
    unsigned long v = n < 0 ? (unsigned long)-n : (unsigned long)n;
    do {
        digits[i++] = (char)('0' + v % 10);
        v /= 10;
    } while (v && i < (int)sizeof(digits));
    if (n < 0)
        append(buf, size, pos, "-");
    while (i > 0 && *pos + 1 < size)
        buf[(*pos)++] = digits[--i];
}

static void sigsys_handler(int sig, siginfo_t *info, void *ucontext)
{
    (void)sig;
    (void)ucontext;
    int nr = info->si_syscall;
    const char *name = nr >= 0 && (unsigned)nr < syscall_name_count && syscall_names[nr]
                           ? syscall_names[nr] : "unknown";
    const char *kind = thread_kind >= 0 ? vmm_thread_kind_name(thread_kind) : "unfiltered";
    char line[256];
    size_t pos = 0;
    append(line, sizeof(line), &pos, "cloud-hypervisor: error: seccomp: the ");
    append(line, sizeof(line), &pos, kind);
    append(line, sizeof(line), &pos, " thread made a forbidden system call: ");
    append(line, sizeof(line), &pos, name);
    append(line, sizeof(line), &pos, " (");
    append_number(line, sizeof(line), &pos, nr);
    append(line, sizeof(line), &pos, "); stopping the VMM\n");
    ssize_t ignored = write(STDERR_FILENO, line, pos);
    (void)ignored;
    /* tcsetattr is async-signal-safe: the user gets the terminal back. */
    if (trap_terminal_fd >= 0)
        tcsetattr(trap_terminal_fd, TCSANOW, &trap_terminal);
    syscall(SYS_exit_group, 1);
}

int vmm_seccomp_trap_init(const char *const *names, unsigned count)
{
    syscall_names = names;
    syscall_name_count = count;
    struct sigaction sa = { .sa_sigaction = sigsys_handler, .sa_flags = SA_SIGINFO };
    sigemptyset(&sa.sa_mask);
    return sigaction(SIGSYS, &sa, NULL) < 0 ? -errno : 0;
}

void vmm_seccomp_trap_terminal(int fd, const struct termios *saved)
{
    if (saved)
        trap_terminal = *saved;
    trap_terminal_fd = saved ? fd : -1;
}
