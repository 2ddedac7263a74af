import CVMMCore

#if canImport(Glibc)
import Glibc
#endif

/// An assigned host device, opened through VFIO while the VMM may still be
/// privileged and kept for every boot until it is removed: its group in the
/// VMM's one container, its device fd, and with `bind=auto` the binding
/// given back once that fd is closed.
final class VFIODevice {
    let config: DeviceConfig
    let found: DeviceDiscovery.Device
    let container: VFIOContainer
    /// The device fd, which `owner` closes.
    let descriptor: Int32
    private var owner: OwnedDescriptor?
    private let binding: ManagedBinding?

    private init(config: DeviceConfig, found: DeviceDiscovery.Device, container: VFIOContainer,
                 binding: ManagedBinding?) throws(VMMError) {
        let group = try container.attach(group: found.group)
        var device: Int32 = -1
        var error = vmm_vfio_error()
        let r = vmm_vfio_device_open(group, found.bdf, &device, &error)
        guard r == 0 else {
            container.detach(group: found.group)
            throw .system(SystemError("--device \(found.bdf): open it through VFIO", returned: r))
        }
        self.config = config
        self.found = found
        self.container = container
        self.binding = binding
        descriptor = device
        owner = OwnedDescriptor(device)
    }

    /// In this order: the device closed, then its group may leave the
    /// container, then vfio-pci, holding nothing more, lets it go.
    deinit {
        owner = nil
        container.detach(group: found.group)
        binding?.restore()
    }

    /// Opens `configs` — the command line's, or one hot-added — in
    /// `container`, opening the container with the first device (one with
    /// `iommu=on` gets a container of its own, the guest's to map): every
    /// device checked (and, with `bind=auto`, moved to vfio-pci) first,
    /// its IOMMU group against those of `assigned`, the VM's open devices,
    /// so that a refusal names the device and its fix before anything is
    /// opened. On failure, what was opened is closed and moved devices go
    /// back to their drivers.
    static func open(_ configs: [DeviceConfig], container: inout VFIOContainer?, beside assigned: [VFIODevice] = [],
                     discovery: DeviceDiscovery = DeviceDiscovery()) throws(VMMError) -> [VFIODevice] {
        var bindings: [String: ManagedBinding] = [:]
        let found: [DeviceDiscovery.Device]
        do {
            for config in configs where config.managedBinding {
                bindings[config.bdf] = try ManagedBinding(bdf: config.bdf, sysfs: discovery.sysfs)
            }
            found = try discovery.check(configs, beside: assigned.map { ($0.config, $0.found) })
        } catch {
            bindings.values.forEach { $0.restore() }
            throw .config(error)
        }
        var opened: [VFIODevice] = []
        do throws(VMMError) {
            for (config, device) in zip(configs, found) {
                let own: VFIOContainer
                if config.iommu {
                    own = try VFIOContainer()
                } else if let container {
                    own = container
                } else {
                    own = try VFIOContainer()
                    container = own
                }
                opened.append(try VFIODevice(config: config, found: device, container: own,
                                             binding: bindings.removeValue(forKey: device.bdf)))
            }
        } catch {
            // Closed first, so that each device's binding is restored after its fd.
            opened.removeAll()
            bindings.values.forEach { $0.restore() }
            throw error
        }
        return opened
    }
}
