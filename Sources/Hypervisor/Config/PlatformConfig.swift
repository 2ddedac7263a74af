/// `--platform num_pci_segments=N`: the PCI segments (host bridges) the
/// guest finds. Kata Containers asks for two in every VM it creates.
public struct PlatformConfig: Sendable, Equatable {
    /// Each device goes on its own `pci_segment` (0 by default).
    public var pciSegments: Int

    /// Cloud Hypervisor's limit: each segment's ECAM takes 1 MiB below 4 GiB.
    public static let maxPCISegments = 96

    public init(pciSegments: Int = 1) {
        self.pciSegments = pciSegments
    }

    static let known = ["num_pci_segments", "iommu_segments", "iommu_address_width", "iommufd", "iommufd_fd", "vfio_p2p_dma",
                        "serial_number", "uuid", "oem_strings", "system_manufacturer", "system_product_name",
                        "system_version", "system_serial_number", "system_uuid", "system_sku_number", "system_family",
                        "chassis_asset_tag", "tdx", "sev_snp"]

    /// `vfio_p2p_dma=off` is what happens here (no device's BARs are mapped
    /// for another's DMA); Cloud Hypervisor's `on` is not built.
    public init(parsing text: String) throws(ConfigError) {
        let list = try OptionList(text, option: "--platform", known: Self.known)
        try list.refuseUnsupported(Self.known.filter { $0 != "num_pci_segments" },
                                   unlessEqualTo: ["iommu_segments": "[]", "tdx": "off", "sev_snp": "off", "vfio_p2p_dma": "off"])
        self.init(pciSegments: try list.integer("num_pci_segments", in: 1...Self.maxPCISegments) ?? 1)
    }
}
