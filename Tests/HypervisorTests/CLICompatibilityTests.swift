import Testing

/// Every top-level option of Cloud Hypervisor's command line (its
/// `cloud-hypervisor/src/main.rs`, with every cargo feature) is known: a
/// command line written for it is never refused as "Unknown option".
@Suite("Cloud Hypervisor's whole command line is known")
struct CLICompatibilityTests {
    /// An option with a value its syntax accepts.
    static let unbuilt: [[String]] = [
        ["--balloon", "size=0,deflate_on_oom=on"],
        ["--event-monitor", "path=/tmp/events"],
        ["--firmware", "/usr/share/cloud-hypervisor/CLOUDHV.fd"],
        ["--fw-cfg-config", "e820=on,kernel=on"],
        ["--gdb", "path=/tmp/gdb.sock"],
        ["--generic-vhost-user", "socket=/tmp/vu,device_type=fs,queue_sizes=[512]"],
        ["--igvm", "/tmp/guest.igvm"],
        ["--host-data", "243eb7dc1a21129caa91dcbb794922b933baecb5823a377eb431188673288c07"],
        ["--ivshmem", "path=/dev/shm/ivshmem,size=1M"],
        ["--log-format", "{level} {msg}"],
        ["--memory-zone", "id=mem0,size=1G"],
        ["--no-shutdown"],
        ["--numa", "guest_numa_id=0,cpus=[0-1]"],
        ["--pci-segment", "pci_segment=1,mmio32_aperture_weight=2"],
        ["--pmem", "file=/tmp/pmem,size=128M"],
        ["--pvmemcontrol"],
        ["--rate-limit-group", "bw_size=1048576,bw_refill_time=100,id=group0"],
        ["--rtc"],
        ["--tpm", "socket=/tmp/swtpm.sock"],
        ["--user-device", "socket=/tmp/vfio-user.sock"],
        ["--vdpa", "path=/dev/vhost-vdpa-0,num_queues=2"],
        ["--watchdog"],
        ["--dbus-object-path", "/org/cloudhypervisor/VM"],
        ["--dbus-service-name", "org.cloudhypervisor.VM"],
        ["--dbus-system-bus"],
    ]

    @Test("an option not built yet is refused as not supported yet, in either spelling", arguments: unbuilt)
    func notSupported(option: [String]) {
        for spelling in [option, option.count > 1 ? ["\(option[0])=\(option[1])"] : option] {
            let r = runVMM(["--kernel", "/nonexistent"] + spelling)
            #expect(r.status == 1)
            #expect(r.stderr == "cloud-hypervisor: error: \(option[0]) is not supported yet\n", "\(spelling): \(r.stderr)")
        }
    }

    @Test("an unbuilt option's keys are still checked")
    func syntaxChecked() {
        let cases: [([String], String)] = [
            (["--pmem", "file=/tmp/p,bogus=1"], "--pmem: unknown key 'bogus'"),
            (["--pmem", "file=/x", "file=/y,file=/z"], "--pmem: key 'file' is given more than once"),
            (["--watchdog", "on"], "--watchdog: invalid value 'on': --watchdog takes no value"),
            (["--firmware"], "--firmware: a value is required"),
            (["--debug-console", "tty"], "--debug-console tty is not supported yet"),
            (["--debug-console", "off,iobase=zz"], "--debug-console iobase: invalid value 'zz'"),
            (["--platform", "num_pci_segments=97"], "--platform num_pci_segments: invalid value '97'"),
            (["--platform", "num_pci_segments=2,iommufd=on"], "--platform iommufd=on is not supported yet"),
            (["--platform", "iommu_segments=[1]"], "--platform iommu_segments: invalid value '1': no such PCI segment"),
            (["--platform", "serial_number=abc"], "--platform serial_number=abc is not supported yet"),
        ]
        for (arguments, message) in cases {
            let r = runVMM(["--kernel", "/nonexistent"] + arguments)
            #expect(r.status == 1)
            #expect(r.stderr.contains(message), "\(arguments): \(r.stderr)")
        }
    }

    @Test("what is there anyway is accepted: --pvpanic, --debug-console off, a bare --rng; --platform's PCI segments are built")
    func acceptedAsBuilt() {
        for extra in [["--pvpanic"], ["--debug-console", "off,iobase=0xe9"], ["--rng"], ["--platform", "num_pci_segments=2"]] {
            let r = runVMM(["--kernel", "/nonexistent"] + extra)
            #expect(r.stderr.contains("--kernel: cannot read '/nonexistent'"), "\(extra): \(r.stderr)")
        }
    }
}
