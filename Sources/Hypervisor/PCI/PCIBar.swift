import CVMMCore

/// One BAR of a function on a bus: which, what kind, and where its
/// registers put it now.
struct PCIBar: Equatable, Sendable {
    enum Kind: String, Sendable {
        /// Cloud Hypervisor's names (`PciBarType`).
        case io = "Io", mmio32 = "Mmio32", mmio64 = "Mmio64"
    }

    let index: Int
    let kind: Kind
    let base: UInt64
    let size: UInt64
    let prefetchable: Bool
}

extension PCIBar {
    /// What the C core reports of BAR `index`; nil for an unused one.
    init?(index: Int, _ info: vmm_pci_bar_info) {
        switch info.kind {
        case VMM_PCI_BAR_IO: kind = .io
        case VMM_PCI_BAR_MEM32: kind = .mmio32
        case VMM_PCI_BAR_MEM64: kind = .mmio64
        default: return nil
        }
        self.index = index
        base = info.address
        size = info.size
        prefetchable = info.prefetchable
    }
}
