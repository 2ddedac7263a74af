/// ACPI's Virtual I/O Translation table (VIOT, ACPI 6.4 §5.2.30): where the
/// virtio-iommu is and which PCI functions sit behind it, which is how a
/// Linux guest on x86 learns that its devices' DMA goes through it. Each
/// endpoint's ID is its requester ID with the segment above it, as the
/// device expects in ATTACH and PROBE; a segment behind it whole (hot-added
/// functions included) is a range of its requester IDs from slot 1 on (slot
/// 0 is the host bridge's), around the virtio-iommu's own.
struct VIOTDescription: Equatable {
    /// The virtio-iommu's own function.
    var iommu: PCIAddress
    /// Functions behind it, one by one.
    var endpoints: [PCIAddress]
    /// Segments behind it whole (`--platform iommu_segments`).
    var segments: [Int]

    private static let headerBytes = 48
    private static let iommuNodeBytes = 16
    private static let rangeNodeBytes = 24

    func table() -> [UInt8] {
        typealias Range = (segment: Int, first: Int, last: Int)
        let own = iommu.slot << 3
        var ranges: [Range] = endpoints.filter { !segments.contains($0.segment) }.map { ($0.segment, $0.slot << 3, $0.slot << 3) }
        for segment in segments {
            let whole: [Range] = segment != iommu.segment ? [(segment, 1 << 3, 0xffff)]
                : [(segment, 1 << 3, own - 1), (segment, own + 1, 0xffff)]
            ranges += whole.filter { $0.first <= $0.last }
        }
        var body = AML.littleEndian(UInt64(ranges.count + 1), bytes: 2)
            + AML.littleEndian(UInt64(Self.headerBytes), bytes: 2) + [UInt8](repeating: 0, count: 8)
        // Type 3, virtio-pci IOMMU: its segment and requester ID.
        body += [3, 0] + AML.littleEndian(UInt64(Self.iommuNodeBytes), bytes: 2)
            + AML.littleEndian(UInt64(iommu.segment), bytes: 2) + AML.littleEndian(UInt64(iommu.slot << 3), bytes: 2)
            + [UInt8](repeating: 0, count: 8)
        // Type 1, PCI range: endpoint ID = start + (requester ID - first).
        for range in ranges {
            body += [1, 0] + AML.littleEndian(UInt64(Self.rangeNodeBytes), bytes: 2)
                + AML.littleEndian(UInt64(range.segment << 16 | range.first), bytes: 4)
                + AML.littleEndian(UInt64(range.segment), bytes: 2) + AML.littleEndian(UInt64(range.segment), bytes: 2)
                + AML.littleEndian(UInt64(range.first), bytes: 2) + AML.littleEndian(UInt64(range.last), bytes: 2)
                + AML.littleEndian(UInt64(Self.headerBytes), bytes: 2) + [UInt8](repeating: 0, count: 6)
        }
        return ACPITables.table("VIOT", revision: 0, body: body)
    }
}
