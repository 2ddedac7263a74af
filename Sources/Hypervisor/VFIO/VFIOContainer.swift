import CVMMCore

#if canImport(Glibc)
import Glibc
#endif

/// The VMM's one VFIO container (Type1 v2), as Cloud Hypervisor has without
/// a vIOMMU: the groups of every assigned device join it, each once however
/// many of its devices are assigned, and guest RAM is mapped — and pinned,
/// which counts against the locked-memory limit after the drop to `--user`
/// — once for all of them. Opened with the first device, kept for every
/// boot of the launch.
final class VFIOContainer {
    private let fd: OwnedDescriptor
    private final class Group {
        let fd: OwnedDescriptor
        var users = 1
        init(fd: consuming OwnedDescriptor) { self.fd = fd }
    }
    /// Group number → the open group and how many open devices are of it.
    private var groups: [Int: Group] = [:]
    /// The VM whose RAM is mapped; nil once the last group left, when the
    /// kernel dropped the IOMMU with every mapping.
    private var mapped: ObjectIdentifier?

    /// The container's fd, for the virtual IOMMU's mappings.
    var descriptor: Int32 { fd.raw }

    init() throws(VMMError) {
        do {
            fd = try OwnedDescriptor(opening: "/dev/vfio/vfio", flags: O_RDWR) {
                $0 == ENOENT ? "open /dev/vfio/vfio (load the vfio-pci module: modprobe vfio-pci)" : "open /dev/vfio/vfio"
            }
        } catch {
            throw .system(error)
        }
        var error = vmm_vfio_error()
        let r = vmm_vfio_container_check(fd.raw, &error)
        guard r == 0 else { throw .system(SystemError("VFIO: \(String(cString: error.what))", returned: r)) }
    }

    /// Group `number` in the container, opened the first time a device of
    /// it is; returns its fd. Each call is matched by `detach`.
    func attach(group number: Int) throws(VMMError) -> Int32 {
        if let group = groups[number] {
            group.users += 1
            return group.fd.raw
        }
        let path = "/dev/vfio/\(number)"
        let group: OwnedDescriptor
        do {
            group = try OwnedDescriptor(opening: path, flags: O_RDWR) {
                $0 == EBUSY ? "open \(path) (the group is in use: another VMM has a device of it)" : "open \(path)"
            }
        } catch {
            throw .system(error)
        }
        var error = vmm_vfio_error()
        let r = vmm_vfio_group_attach(fd.raw, group.raw, groups.isEmpty, &error)
        guard r == 0 else { throw .system(SystemError("VFIO: \(String(cString: error.what))", returned: r)) }
        let raw = group.raw
        groups[number] = Group(fd: group)
        return raw
    }

    /// A device of group `number` closed: the group leaves with its last one.
    func detach(group number: Int) {
        guard let group = groups[number] else { return }
        group.users -= 1
        guard group.users == 0 else { return }
        groups[number] = nil
        if groups.isEmpty { mapped = nil }
    }

    /// `vm`'s RAM mapped for DMA, IOVA = guest physical address, unless it
    /// is already.
    func map(_ vm: VirtualMachine) throws(VMMError) {
        guard mapped != ObjectIdentifier(vm) else { return }
        let r = vmm_vfio_dma_map(fd.raw, vm.handle, 0)
        guard r == 0 else {
            throw .system(SystemError("VFIO: map guest RAM for the device's DMA"
                + (r == -ENOMEM ? " (the locked-memory limit is too low: run as root, or raise ulimit -l)" : ""), returned: r))
        }
        mapped = ObjectIdentifier(vm)
    }

    /// Memory hotplug: `vm`'s regions from `region` on, if its RAM is mapped.
    func map(_ vm: VirtualMachine, from region: UInt32) throws(VMMError) {
        guard mapped == ObjectIdentifier(vm) else { return }
        let r = vmm_vfio_dma_map(fd.raw, vm.handle, region)
        guard r == 0 else { throw .system(SystemError("VFIO: map hot-added RAM for the device's DMA", returned: r)) }
    }

    /// A failed memory hotplug: the regions from `region` on unmapped again.
    func unmap(_ vm: VirtualMachine, from region: UInt32) {
        guard mapped == ObjectIdentifier(vm) else { return }
        vmm_vfio_dma_unmap(fd.raw, vm.handle, region)
    }

    /// The boot of `vm` ends: its RAM unmapped (and unpinned).
    func release(_ vm: VirtualMachine) {
        guard mapped == ObjectIdentifier(vm) else { return }
        vmm_vfio_dma_unmap(fd.raw, vm.handle, 0)
        mapped = nil
    }
}
