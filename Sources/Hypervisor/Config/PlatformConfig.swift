/// `--platform num_pci_segments=N,iommu_segments=[…],iommu_address_width=B`:
/// the PCI segments (host bridges) the guest finds, and which of them sit
/// whole behind the virtual IOMMU. Kata Containers asks for two segments
/// in every VM it creates.
public struct PlatformConfig: Sendable, Equatable {
    /// Each device goes on its own `pci_segment` (0 by default).
    public var pciSegments: Int
    /// Segments whose every device is behind the virtual IOMMU, hot-added
    /// ones too (the guest is told of the whole segment at boot).
    public var iommuSegments: [Int]
    /// The IOVA bits the guest may map through the virtual IOMMU.
    public var iommuAddressWidth: Int

    /// Cloud Hypervisor's limit: each segment's ECAM takes 1 MiB below 4 GiB.
    public static let maxPCISegments = 96
    public static let maxIOMMUAddressWidth = 64

    public init(pciSegments: Int = 1, iommuSegments: [Int] = [], iommuAddressWidth: Int = maxIOMMUAddressWidth) {
        self.pciSegments = pciSegments
        self.iommuSegments = iommuSegments
        self.iommuAddressWidth = iommuAddressWidth
    }

    static let known = ["num_pci_segments", "iommu_segments", "iommu_address_width", "iommufd", "iommufd_fd", "vfio_p2p_dma",
                        "serial_number", "uuid", "oem_strings", "system_manufacturer", "system_product_name",
                        "system_version", "system_serial_number", "system_uuid", "system_sku_number", "system_family",
                        "chassis_asset_tag", "tdx", "sev_snp"]

    /// `vfio_p2p_dma=off` is what happens here (no device's BARs are mapped
    /// for another's DMA); Cloud Hypervisor's `on` is not built.
    public init(parsing text: String) throws(ConfigError) {
        let list = try OptionList(text, option: "--platform", known: Self.known)
        let built = ["num_pci_segments", "iommu_segments", "iommu_address_width"]
        try list.refuseUnsupported(Self.known.filter { !built.contains($0) },
                                   unlessEqualTo: ["tdx": "off", "sev_snp": "off", "vfio_p2p_dma": "off"])
        let segments = try list.integer("num_pci_segments", in: 1...Self.maxPCISegments) ?? 1
        let iommuSegments = try list.integerList("iommu_segments") ?? []
        // Cloud Hypervisor: "Invalid PCI segment id".
        for segment in iommuSegments where segment < 0 || segment >= segments {
            throw .invalidValue(option: "--platform", key: "iommu_segments", value: String(segment),
                                reason: "no such PCI segment: the VM has \(segments) (give num_pci_segments=\(max(segment, 0) + 1) or more)")
        }
        // Below 12 bits not even one page fits.
        let width = try list.integer("iommu_address_width", in: 12...Self.maxIOMMUAddressWidth) ?? Self.maxIOMMUAddressWidth
        self.init(pciSegments: segments, iommuSegments: iommuSegments, iommuAddressWidth: width)
    }
}
