#if canImport(Glibc)
import Glibc
#endif

/// `--device …,bind=auto`: the VFIO HOWTO's steps done for one device —
/// unbind it from its driver, hand it to vfio-pci with driver_override —
/// and undone when the VMM ends, as libvirt's managed='yes' does.
///
/// The sysfs files that undo it are opened here, while the VMM may still
/// be privileged; after the drop and under seccomp the VMM only writes to
/// them. A kill the VMM cannot catch (SIGKILL, a seccomp violation) leaves
/// the device on vfio-pci.
final class ManagedBinding {
    let bdf: String
    /// The driver to give the device back to; nil if it had none.
    let original: String?
    private let vfioUnbind: Int32
    private let override: Int32
    /// The original driver's bind file, or drivers_probe for a device that had none.
    private let rebind: Int32
    private var restored = false

    /// Moves `bdf` to vfio-pci; nil when it is there already (nothing to undo).
    init?(bdf: String, sysfs: String = "/sys") throws(ConfigError) {
        let device = "\(sysfs)/bus/pci/devices/\(bdf)"
        func refuse(_ reason: String) -> ConfigError {
            .invalidValue(option: "--device", key: "bind", value: "auto", reason: reason)
        }
        guard isDirectory("\(sysfs)/bus/pci/drivers/vfio-pci") else {
            throw refuse("needs the vfio-pci driver: modprobe vfio-pci")
        }
        guard isDirectory(device) else { throw refuse("no PCI device \(bdf) on this host (lspci -D lists them)") }
        let original = linkName("\(device)/driver")
        if original == "vfio-pci" { return nil }
        self.bdf = bdf
        self.original = original
        func openForWrite(_ path: String) throws(ConfigError) -> Int32 {
            let fd = open(path, O_WRONLY | O_CLOEXEC)
            guard fd >= 0 else { throw refuse("cannot open \(path): \(String(cString: strerror(errno))) (run as root)") }
            return fd
        }
        vfioUnbind = try openForWrite("\(sysfs)/bus/pci/drivers/vfio-pci/unbind")
        do {
            override = try openForWrite("\(device)/driver_override")
        } catch {
            close(vfioUnbind)
            throw error
        }
        do {
            rebind = try openForWrite(original.map { "\(sysfs)/bus/pci/drivers/\($0)/bind" } ?? "\(sysfs)/bus/pci/drivers_probe")
        } catch {
            close(vfioUnbind)
            close(override)
            throw error
        }
        let moved = (original == nil || write(text: bdf, to: "\(device)/driver/unbind"))
            && write(text: "vfio-pci", fd: override)
            && write(text: bdf, to: "\(sysfs)/bus/pci/drivers/vfio-pci/bind")
        guard moved else {
            let error = errno
            restore()
            throw refuse("could not move \(bdf) to vfio-pci: \(String(cString: strerror(error)))")
        }
    }

    deinit {
        restore()
        close(vfioUnbind)
        close(override)
        close(rebind)
    }

    /// Gives the device back to its driver; call once its VFIO descriptors are closed.
    func restore() {
        guard !restored else { return }
        restored = true
        _ = write(text: bdf, fd: vfioUnbind)
        _ = write(text: "\n", fd: override)
        _ = write(text: bdf, fd: rebind)
    }

    private func write(text: String, fd: Int32) -> Bool {
        text.withCString { Glibc.write(fd, $0, strlen($0)) } >= 0
    }

    private func write(text: String, to path: String) -> Bool {
        let fd = open(path, O_WRONLY | O_CLOEXEC)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        return write(text: text, fd: fd)
    }
}
