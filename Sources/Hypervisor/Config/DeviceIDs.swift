/// Device ids as Cloud Hypervisor gives them (`DeviceManager::next_device_name`):
/// a device named by nobody gets its kind's prefix and the next number of
/// one counter shared by every kind (`_disk0`, `_disk1`, `_net2`, `_fs3`, `_vsock4`, `_vfio5`),
/// once, when its configuration is accepted; the id is stored in the
/// configuration, and every later lookup (vm.info, the device tree,
/// vm.counters, vm.remove-device) uses it. The counter only grows, so no
/// id names two devices in a VM's life.
extension VMConfig {
    /// This configuration with every disk, network, share, vsock and host device named,
    /// in the order Cloud Hypervisor creates them.
    public func withDeviceIDs() -> VMConfig {
        var config = self
        for i in config.disks.indices where config.disks[i].id == nil { config.disks[i].id = config.nextDeviceID("_disk") }
        for i in config.nets.indices where config.nets[i].id == nil { config.nets[i].id = config.nextDeviceID("_net") }
        for i in config.fs.indices where config.fs[i].id == nil { config.fs[i].id = config.nextDeviceID("_fs") }
        if config.vsock != nil, config.vsock?.id == nil {
            let id = config.nextDeviceID("_vsock")
            config.vsock?.id = id
        }
        for i in config.devices.indices where config.devices[i].id == nil { config.devices[i].id = config.nextDeviceID("_vfio") }
        return config
    }

    /// The next free name with `prefix`; the counter moves past it.
    public mutating func nextDeviceID(_ prefix: String) -> String {
        let taken = Set(disks.compactMap(\.id) + nets.compactMap(\.id) + devices.compactMap(\.id) + fs.compactMap(\.id)
                        + [vsock?.id].compactMap { $0 })
        while true {
            let id = "\(prefix)\(deviceCounter)"
            deviceCounter += 1
            if !taken.contains(id) { return id }
        }
    }
}
