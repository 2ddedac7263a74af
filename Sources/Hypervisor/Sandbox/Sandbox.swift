import CVMMCore

#if canImport(Glibc)
import Glibc
#endif

/// The hardening sequence. Once per launch, before any thread but the VMM
/// thread exists: rlimits, the privilege drop, no_new_privs
/// (`dropPrivileges`). Then, once the first VM's files are open: Landlock
/// and the VMM thread's seccomp filter; vCPU and device threads install
/// theirs on start, the API thread its own.
final class Sandbox {
    /// Installed by each vCPU thread before its first KVM_RUN; nil with `--seccomp false`.
    let vcpuFilter: SeccompFilter?
    let vmmFilter: SeccompFilter?
    /// Installed by each device thread before it reads a queue; empty with `--seccomp false`.
    let deviceFilters: [vmm_thread_kind: SeccompFilter]

    /// `--user`/`--group` resolved, before anything is opened.
    static func identity(_ config: VMConfig) throws(VMMError) -> Identity {
        do {
            return try Identity(user: config.user, group: config.group)
        } catch {
            throw .config(error)
        }
    }

    /// Every thread started later inherits the identity: run it first.
    static func dropPrivileges(to identity: Identity) throws(VMMError) {
        Self.setLimits()
        try PrivilegeDrop.apply(identity)
        let r = vmm_set_no_new_privs()
        guard r == 0 else { throw .system(SystemError("prctl(PR_SET_NO_NEW_PRIVS)", returned: r)) }
    }

    /// Every thread allocates from glibc's main arena. A thread with an
    /// arena of its own has glibc create, grow and shrink a heap behind its
    /// back — mmap and mprotect of a 64 MiB reservation, and at the first
    /// shrink an open of /proc/sys/vm/overcommit_memory — which no filtered
    /// thread's list should need (the API thread died on that openat after
    /// a few large requests). The main arena grows and shrinks with brk, and
    /// chunks of 128 KiB or more come and go with mmap and munmap (always:
    /// the threshold is fixed, so a burst of large buffers goes back to the
    /// system when freed): the calls each allocating thread kind's list has.
    /// One arena also spares each thread its own heap's pages. Runs before
    /// any other thread exists.
    static func useMallocPolicy() throws(VMMError) {
        let r = vmm_malloc_policy()
        guard r == 0 else { throw .system(SystemError("mallopt(M_ARENA_MAX, M_MMAP_THRESHOLD)", returned: r)) }
    }

    /// The API thread's filter, nil with `--seccomp false`. Installed by the
    /// thread itself, which starts before the VMM thread's own filter.
    /// `terminal`: standard input is a terminal, which a `vm.create` with a
    /// tty console may put in raw mode after this thread starts.
    static func apiFilter(_ config: VMConfig, terminal: Bool) throws(VMMError) -> SeccompFilter? {
        guard config.seccomp != .disabled else { return nil }
        try Self.installTrapReport()
        return try SeccompFilter(kind: VMM_THREAD_API, mode: config.seccomp, extraIoctls: terminalIoctls(terminal))
    }

    /// `terminal`: the VMM restores a raw-mode terminal on exit (TCSETS).
    /// `restoring`: the first boot reads guest RAM from a snapshot's memory file.
    init(config: VMConfig, terminal: Bool, restoring: Bool = false) throws(VMMError) {
        if config.landlock { try Landlock.enforce(config) }
        guard config.seccomp != .disabled else {
            vcpuFilter = nil
            vmmFilter = nil
            deviceFilters = [:]
            return
        }
        try Self.installTrapReport()
        let restore = Self.terminalIoctls(terminal)
        // With the API: a hot-added disk is opened (and stat'ed, sized,
        // locked; a lock's holder looked up in /proc) on the VMM thread;
        // Landlock bounds what it may open. The socket's file goes when the
        // VMM ends, as Cloud Hypervisor removes it.
        // A hot-added VFIO device's sysfs is read (readlink) and its
        // container and group set up here too; a hot-added network's tap
        // configured through a socket's interface requests, and its guest
        // MAC drawn at random when none is given.
        var api: [String] = []
        var apiIoctls: [UInt] = []
        if config.apiSocket != nil {
            api = ["openat", "newfstatat", "lseek", "fcntl", "getdents64", "readlink", "socket", "getrandom"]
            var numbers: UnsafePointer<UInt>?
            let count = Int(vmm_seccomp_hotplug_ioctls(&numbers))
            apiIoctls = (0..<count).map { numbers![$0] }
        }
        if case .path? = config.apiSocket { api.append("unlink") }
        // vm.snapshot writes guest RAM sparse and syncs its files; a restore
        // (vm.restore, --restore) reads the memory file's data extents.
        if config.apiSocket != nil { api += ["ftruncate", "fsync", "pwrite64"] }
        if config.apiSocket != nil || restoring {
            api += ["newfstatat", "fstat", "lseek"]
            var numbers: UnsafePointer<UInt>?
            let count = Int(vmm_seccomp_state_ioctls(&numbers))
            apiIoctls += (0..<count).map { numbers![$0] }
        }
        // A vsock's thread starts below the VMM thread, whose filter must
        // admit its calls; the VMM thread makes its timer on each boot, and
        // binds its socket when vm.add-vsock brings one, and removes it.
        if config.vsock != nil || config.apiSocket != nil {
            api += SeccompFilter.allowed[VMM_THREAD_VIRTIO_VSOCK, default: []] + ["timerfd_create", "unlink"]
        }
        if config.apiSocket != nil { api += ["bind", "listen", "umask", "connect"] }
        // A migration's stream: connected or accepted here, its waits
        // bounded by poll, taps handed over a UNIX socket (SCM_RIGHTS).
        if config.apiSocket != nil {
            api += ["poll", "sendmsg", "recvmsg", "setsockopt", "getsockopt", "accept4", "clock_gettime"]
        }
        // The virtio-iommu's thread starts below the VMM thread (with a
        // VM the command line or vm.create puts an IOMMU in).
        if config.hasIOMMU || config.apiSocket != nil {
            api += SeccompFilter.allowed[VMM_THREAD_VIRTIO_IOMMU, default: []]
        }
        // A socket console's relay starts below the VMM thread; its socket goes at exit.
        if [config.serial, config.console].contains(where: { if case .socket = $0 { true } else { false } }) {
            api += SeccompFilter.allowed[VMM_THREAD_CONSOLE_SOCKET, default: []] + ["unlink"]
        }
        // Shared RAM is a memfd: each boot's, and hot-added RAM's. A
        // vhost-user device's thread starts below the VMM thread, which
        // also asks a disk's backend for its config, sends hot-added RAM
        // and takes the rings back when a boot ends; vm.add-fs connects.
        if config.memory.shared { api += ["memfd_create", "ftruncate"] }
        if !config.fs.isEmpty || config.disks.contains(where: { $0.vhostSocket != nil }) || config.apiSocket != nil {
            api += SeccompFilter.allowed[VMM_THREAD_VHOST_USER, default: []]
        }
        let vmm = try SeccompFilter(kind: VMM_THREAD_VMM, mode: config.seccomp, extraIoctls: restore + apiIoctls,
                                    extraSyscalls: api)
        vcpuFilter = try SeccompFilter(kind: VMM_THREAD_VCPU, mode: config.seccomp, extraIoctls: restore)
        var devices: [vmm_thread_kind: SeccompFilter] = [:]
        for kind in [VMM_THREAD_VIRTIO_BLK, VMM_THREAD_VIRTIO_CONSOLE, VMM_THREAD_VIRTIO_RNG, VMM_THREAD_VIRTIO_NET,
                     VMM_THREAD_VIRTIO_VSOCK, VMM_THREAD_VHOST_USER, VMM_THREAD_CONSOLE_SOCKET, VMM_THREAD_VIRTIO_IOMMU] {
            devices[kind] = try SeccompFilter(kind: kind, mode: config.seccomp, extraIoctls: restore)
        }
        deviceFilters = devices
        try vmm.install()
        vmmFilter = vmm
    }

    /// A raw terminal is restored on exit, and by the SIGSYS report on
    /// whichever thread violated: glibc's tcsetattr sets (TCSETS), then
    /// reads back (TCGETS). Every thread kind's filter has them then.
    static func terminalIoctls(_ terminal: Bool) -> [UInt] {
        terminal ? [UInt(TCGETS), UInt(TCSETS)] : []
    }

    /// The SIGSYS report every filter's violation goes to, installed once.
    private static func installTrapReport() throws(VMMError) {
        let trap = SeccompFilter.trapInitialized
        guard trap == 0 else { throw .system(SystemError("install the SIGSYS handler", returned: trap)) }
    }

    /// No core files (guest memory and secrets stay out of them); as many
    /// descriptors as the hard limit allows, for devices' eventfds; no cap on
    /// locked memory, which VFIO's DMA mapping pins (all of guest RAM, each
    /// boot) and which the privilege drop would otherwise limit to 8M.
    private static func setLimits() {
        var locked = rlimit(rlim_cur: rlim_t.max, rlim_max: rlim_t.max) // RLIM_INFINITY
        setrlimit(Int32(VMM_RLIMIT_MEMLOCK), &locked)
        var core = rlimit(rlim_cur: 0, rlim_max: 0)
        setrlimit(Int32(RLIMIT_CORE.rawValue), &core)
        var files = rlimit()
        if getrlimit(Int32(RLIMIT_NOFILE.rawValue), &files) == 0 {
            files.rlim_cur = files.rlim_max
            setrlimit(Int32(RLIMIT_NOFILE.rawValue), &files)
        }
    }
}
