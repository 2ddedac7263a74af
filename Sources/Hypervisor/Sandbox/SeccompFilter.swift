import CSeccomp
import CVMMCore

#if canImport(Glibc)
import Glibc
#endif

/// Per-thread-kind seccomp allow-lists, compiled with libseccomp into BPF
/// that the C core installs on each thread before it touches guest input.
///
/// The lists are what each thread was measured to need (strace over boots,
/// resets and SMP guests); ioctl is narrowed to the KVM requests the C core
/// names for that thread kind.
public final class SeccompFilter: @unchecked Sendable {
    // @unchecked: `instructions` and `program` are written once in init and
    // only read afterwards, by the threads that install the program.

    /// What each thread kind may call besides its ioctls.
    static let allowed: [vmm_thread_kind: [String]] = [
        VMM_THREAD_VCPU: [
            "write",            // console bytes, irqfd, kick and stop eventfds, fatal-exit dump
            "futex",            // device and stop locks, waiting for a virtio reset
            "getpid", "tgkill", // pthread_kill: a stop request kicks the other vCPUs
            "rt_sigreturn",     // back from the kick handler
            "rt_sigprocmask", "madvise", "exit", // thread exit in glibc
            "exit_group",
            "mmap", "mprotect", "munmap", "brk", // a guest BAR move publishes a new bus table (malloc)
            "sched_yield",      // and waits for other vCPUs' lookups of the old one to end
            "clock_gettime",    // the rate limit on guest-triggered warnings
            "pread64", "pwrite64", // an assigned device's trapped BARs and config space
        ],
        VMM_THREAD_VIRTIO_BLK: deviceThread + [
            "io_uring_enter",    // submit requests, wait for completions on a reset
            "preadv", "pwritev", // synchronous I/O without io_uring, and short transfers' rest
            "fdatasync",         // flush
            "fallocate",         // discard, write-zeroes
        ],
        VMM_THREAD_VIRTIO_CONSOLE: deviceThread + [
            "epoll_ctl",         // input paused while the guest has no receive buffers
        ],
        VMM_THREAD_VIRTIO_RNG: deviceThread,
        VMM_THREAD_VIRTIO_NET: deviceThread + [
            "readv", "writev",   // a frame from and to the tap, the header included
            "epoll_ctl",         // the tap unwatched while the guest has no receive buffers
            "timerfd_settime",   // the held transmit interrupt's deadline
        ],
        VMM_THREAD_VIRTIO_VSOCK: deviceThread + [
            "epoll_ctl",         // host sockets watched, paused while the guest has no buffers or credit
            "accept4",           // host clients of the hybrid socket
            "socket", "connect", // the guest's connections to <socket>_<port>
            "readv", "sendmsg",  // stream data straight between guest buffers and sockets (MSG_NOSIGNAL)
            "shutdown", "close", // a stream's ends
            "timerfd_settime",   // the host client's wait for the guest's answer
            "mmap", "munmap", "brk", // streams and the buffers of slow host clients
        ],
        VMM_THREAD_VHOST_USER: deviceThread + [
            "sendmsg", "poll",  // requests to the backend (rings handed over and back), its replies awaited
            "epoll_ctl",        // a backend gone: its socket unwatched
        ],
        VMM_THREAD_CONSOLE_SOCKET: deviceThread + [
            "accept4", "sendto", // its client, the guest's output to it (MSG_NOSIGNAL)
            "epoll_ctl",         // the client watched
            "close",             // a client gone or replaced
        ],
        VMM_THREAD_VIRTIO_IOMMU: deviceThread + [
            "mmap", "munmap", "mremap", "brk", // a domain's table of mappings grows and shrinks (malloc)
        ],
        VMM_THREAD_API: [
            "epoll_wait", "epoll_ctl", "epoll_create1", // its clients
            "accept4", "recvmsg", "sendto",  // requests in, with descriptors; answers out
            "read", "write",                 // the VMM thread's answer, the stop event
            "close",                         // clients and descriptors they sent
            "mmap", "munmap", "mprotect", "madvise", "brk", // malloc
            "futex", "gettid",               // the channel's lock (priority-inheriting: it names its owner)
            "rt_sigprocmask", "exit", "exit_group",
        ],
        VMM_THREAD_VMM: [
            "epoll_wait", "epoll_ctl", "read", "write", "close",
            "mmap", "munmap", "mprotect", "madvise", "brk", // guest RAM, vCPU stacks, malloc
            "pread64",          // the kernel and initramfs again after a reset
            "eventfd2", "epoll_create1", // stop event, interrupt lines, device threads' kicks of a new boot
            "timerfd_create",   // a new boot's virtio-net transmit interrupt timer
            "sched_setscheduler", // a device or vCPU thread's own SCHED_BATCH at its start (restricted below)
            "sched_getaffinity", "sched_getscheduler", // a vCPU thread's: whether it shares CPUs, the policy it was given
            "io_uring_setup", "io_uring_register", // a new boot's virtio-blk rings
            "clone",            // vCPU threads (restricted to CLONE_THREAD below)
            "set_robust_list", "rseq", "prctl", // a new vCPU thread's start, before its own filter
            "rt_sigaction",     // glibc installs its setxid handler at the first pthread_create
            "futex", "getpid", "tgkill", "rt_sigprocmask", "rt_sigreturn",
            "gettid",           // the API channel's lock names its owner
            "exit", "exit_group",
        ],
    ]

    /// What every device thread needs: wait for kicks, read them, signal
    /// irqfds, lock, and leave.
    static let deviceThread = [
        "epoll_wait", "read", "write", "futex", "clock_gettime",
        "rt_sigprocmask", "madvise", "exit", "exit_group",
    ]

    /// Every thread kind that starts below the VMM thread.
    static let childKinds = [VMM_THREAD_VCPU, VMM_THREAD_VIRTIO_BLK, VMM_THREAD_VIRTIO_CONSOLE, VMM_THREAD_VIRTIO_RNG,
                             VMM_THREAD_VIRTIO_NET]
    /// Thread kinds only some VMs have: the VMM's list admits theirs only
    /// when the VM may have one (`Sandbox`).
    static let optionalKinds = [VMM_THREAD_VIRTIO_VSOCK, VMM_THREAD_VHOST_USER, VMM_THREAD_CONSOLE_SOCKET,
                                VMM_THREAD_VIRTIO_IOMMU]

    /// Other threads are cloned from the VMM thread and keep its filter
    /// beneath their own, so the VMM's list admits everything theirs do.
    static func syscalls(for kind: vmm_thread_kind) -> [String] {
        // A wait with a timeout (futex, poll) that a signal interrupted comes
        // back as restart_syscall, which only resumes a call this filter
        // already allowed: seen on the VMM thread under load, killing it.
        let own = (allowed[kind] ?? []) + ["restart_syscall"]
        guard kind == VMM_THREAD_VMM else { return own }
        return childKinds.reduce(own) { list, child in list + (allowed[child] ?? []).filter { !list.contains($0) } }
    }

    static func ioctls(for kind: vmm_thread_kind) -> [UInt] {
        func list(_ kind: vmm_thread_kind) -> [UInt] {
            var numbers: UnsafePointer<UInt>?
            let count = Int(vmm_seccomp_ioctls(kind, &numbers))
            return (0..<count).map { numbers![$0] }
        }
        let own = list(kind)
        guard kind == VMM_THREAD_VMM else { return own }
        return childKinds.reduce(own) { all, child in all + list(child).filter { !all.contains($0) } }
    }

    public let kind: String
    /// Number of syscalls allowed (ioctl counted once).
    public let allowedSyscallCount: Int
    private let instructions: UnsafeMutableBufferPointer<sock_filter>
    private let program: UnsafeMutablePointer<vmm_seccomp_program>

    /// `extraIoctls`, `extraSyscalls`: what a feature in use needs on this thread only.
    init(kind: vmm_thread_kind, mode: VMConfig.SeccompMode, extraIoctls: [UInt] = [],
         extraSyscalls: [String] = []) throws(VMMError) {
        self.kind = String(cString: vmm_thread_kind_name(kind))
        var names = Self.syscalls(for: kind)
        names += extraSyscalls.filter { !names.contains($0) }
        let ioctls = Self.ioctls(for: kind) + extraIoctls
        allowedSyscallCount = names.count + (ioctls.isEmpty ? 0 : 1)
        let violation = switch mode {
        case .log: SCMP_ACT_LOG
        case .errno: SCMP_ACT_ERRNO_EPERM
        default: SCMP_ACT_TRAP
        }
        guard let ctx = seccomp_init(violation) else {
            throw .system(SystemError("seccomp_init", errno: ENOMEM))
        }
        defer { seccomp_release(ctx) }

        for name in names {
            let nr = seccomp_syscall_resolve_name(name)
            guard nr != __NR_SCMP_ERROR else { throw .system(SystemError("seccomp: unknown syscall \(name)", errno: EINVAL)) }
            if name == "clone" {
                // Threads only: a new process could leave the sandbox's accounting.
                var threadOnly = scmp_arg_cmp(arg: 0, op: SCMP_CMP_MASKED_EQ,
                                              datum_a: UInt64(CLONE_THREAD), datum_b: UInt64(CLONE_THREAD))
                try Self.check(seccomp_rule_add_exact_array(ctx, SCMP_ACT_ALLOW, nr, 1, &threadOnly), "seccomp: rule for clone")
            } else if name == "sched_setscheduler" {
                // Only the calling thread, only to SCHED_BATCH: no other
                // thread's policy, and no real-time one.
                var rules = [scmp_arg_cmp(arg: 0, op: SCMP_CMP_EQ, datum_a: 0, datum_b: 0),
                             scmp_arg_cmp(arg: 1, op: SCMP_CMP_EQ, datum_a: UInt64(SCHED_BATCH), datum_b: 0)]
                try Self.check(seccomp_rule_add_exact_array(ctx, SCMP_ACT_ALLOW, nr, 2, &rules), "seccomp: rule for sched_setscheduler")
            } else if name == "tgkill" {
                // Signals to this VMM's own threads only: VMMs that share a
                // uid could otherwise signal each other.
                var ownProcess = scmp_arg_cmp(arg: 0, op: SCMP_CMP_EQ, datum_a: UInt64(getpid()), datum_b: 0)
                try Self.check(seccomp_rule_add_exact_array(ctx, SCMP_ACT_ALLOW, nr, 1, &ownProcess), "seccomp: rule for tgkill")
            } else {
                try Self.check(seccomp_rule_add_exact_array(ctx, SCMP_ACT_ALLOW, nr, 0, nil), "seccomp: rule for \(name)")
            }
        }
        if kind == VMM_THREAD_VMM {
            // clone3's flags sit behind a pointer a filter cannot read: glibc
            // falls back to clone, whose flags it can.
            let clone3 = seccomp_syscall_resolve_name("clone3")
            try Self.check(seccomp_rule_add_exact_array(ctx, UInt32(SCMP_ACT_ERRNO_ENOSYS), clone3, 0, nil), "seccomp: rule for clone3")
        }
        let ioctlNumber = seccomp_syscall_resolve_name("ioctl")
        for ioctl in ioctls {
            var request = scmp_arg_cmp(arg: 1, op: SCMP_CMP_EQ, datum_a: UInt64(ioctl), datum_b: 0)
            try Self.check(seccomp_rule_add_exact_array(ctx, SCMP_ACT_ALLOW, ioctlNumber, 1, &request), "seccomp: ioctl rule")
        }

        let bytes = try Self.export(ctx)
        let count = bytes.count / MemoryLayout<sock_filter>.size
        let filter = UnsafeMutableBufferPointer<sock_filter>.allocate(capacity: count)
        _ = bytes.withUnsafeBytes { raw in
            memcpy(filter.baseAddress!, raw.baseAddress!, count * MemoryLayout<sock_filter>.size)
        }
        instructions = filter
        program = .allocate(capacity: 1)
        program.initialize(to: vmm_seccomp_program(kind: kind, filter: filter.baseAddress, length: UInt16(count)))
    }

    deinit {
        program.deallocate()
        instructions.deallocate()
    }

    /// For `vmm_vcpus_start`'s init hook (`vmm_seccomp_thread_init`).
    var opaque: UnsafeMutableRawPointer { UnsafeMutableRawPointer(program) }

    /// Installs the filter on the calling thread.
    func install() throws(VMMError) {
        let r = vmm_seccomp_install(program)
        guard r == 0 else { throw .system(SystemError("install the \(kind) seccomp filter", returned: r)) }
    }

    /// libseccomp 2.5 exports BPF only to a file descriptor.
    private static func export(_ ctx: scmp_filter_ctx) throws(VMMError) -> [UInt8] {
        var fds: [Int32] = [-1, -1]
        guard pipe(&fds) == 0 else { throw .system(SystemError("pipe", errno: errno)) }
        defer { close(fds[0]) }
        let r = seccomp_export_bpf(ctx, fds[1])
        close(fds[1])
        try check(r, "seccomp_export_bpf")
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = read(fds[0], &chunk, chunk.count)
            if n < 0 && errno == EINTR { continue }
            guard n >= 0 else { throw .system(SystemError("read the seccomp program", errno: errno)) }
            if n == 0 { break }
            bytes += chunk[0..<n]
        }
        return bytes
    }

    private static func check(_ result: Int32, _ what: String) throws(VMMError) {
        guard result >= 0 else { throw .system(SystemError(what, returned: result)) }
    }

    /// The SIGSYS report needs syscall names without allocating in a signal
    /// handler: resolve them all once, for the life of the process.
    static let trapInitialized: Int32 = {
        let count = 512
        let table = UnsafeMutablePointer<UnsafePointer<CChar>?>.allocate(capacity: count)
        for nr in 0..<count {
            let name = seccomp_syscall_resolve_num_arch(UInt32(SCMP_ARCH_NATIVE), Int32(nr))
            table[nr] = name.map { UnsafePointer($0) }
        }
        return vmm_seccomp_trap_init(table, UInt32(count))
    }()
}

private let SCMP_ACT_TRAP: UInt32 = 0x0003_0000
private let SCMP_ACT_LOG: UInt32 = 0x7ffc_0000
private let SCMP_ACT_ALLOW: UInt32 = 0x7fff_0000
private let SCMP_ACT_ERRNO_ENOSYS: UInt32 = 0x0005_0000 | UInt32(ENOSYS)
private let SCMP_ACT_ERRNO_EPERM: UInt32 = 0x0005_0000 | UInt32(EPERM)
