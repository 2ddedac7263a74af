/// vm.info's `device_tree`, as Cloud Hypervisor builds it on x86: a node
/// per device, keyed by id. A virtio device's node is the child of its
/// PCI transport's, `_virtio-pci-<id>`, which holds the address and the
/// BARs; an assigned device's node holds its own. A node without a parent
/// or an address has no such field (Cloud Hypervisor skips `None`s).
enum DeviceTree {
    struct PCIDevice {
        let id: String
        let address: PCIAddress
        let bars: [PCIBar]
        let virtio: Bool
    }

    /// `serial`: COM1 is there (`--serial` other than `off`). The IOAPIC
    /// always is.
    static func json(_ devices: [PCIDevice], serial: Bool) -> JSONValue {
        var nodes: [String: JSONValue] = [:]
        func add(_ id: String, resources: [JSONValue] = [], parent: String? = nil, children: [String] = [],
                 address: PCIAddress? = nil) {
            var node: [String: JSONValue] = ["id": .string(id), "resources": .array(resources),
                                             "children": .array(children.map { .string($0) })]
            if let parent { node["parent"] = .string(parent) }
            if let address { node["pci_bdf"] = .string(address.description) }
            nodes[id] = .object(node)
        }
        add("__ioapic")
        if serial { add("__serial") }
        for device in devices {
            let resources = device.bars.map(resource)
            if device.virtio {
                let transport = "_virtio-pci-" + device.id
                add(device.id, parent: transport)
                add(transport, resources: resources, children: [device.id], address: device.address)
            } else {
                add(device.id, resources: resources, address: device.address)
            }
        }
        return .object(nodes)
    }

    /// Cloud Hypervisor's `Resource::PciBar`, an externally tagged enum.
    private static func resource(_ bar: PCIBar) -> JSONValue {
        .object(["PciBar": .object([
            "index": .integer(Int64(bar.index)), "base": .integer(Int64(bitPattern: bar.base)),
            "size": .integer(Int64(bitPattern: bar.size)), "type_": .string(bar.kind.rawValue),
            "prefetchable": .bool(bar.prefetchable),
        ])])
    }
}
