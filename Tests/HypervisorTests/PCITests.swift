import CVMMCore
import Glibc
import Testing
@testable import Hypervisor

/// A PIO and an MMIO bus of the test's own, as a VM has them.
final class TestBuses {
    let pio: OpaquePointer
    let mmio: OpaquePointer

    init() throws {
        var pio: OpaquePointer?, mmio: OpaquePointer?
        try #require(vmm_bus_create(&pio) == 0 && vmm_bus_create(&mmio) == 0)
        self.pio = pio!
        self.mmio = mmio!
    }

    deinit {
        vmm_bus_destroy(pio)
        vmm_bus_destroy(mmio)
    }

    var space: vmm_pci_space { vmm_pci_space(pio: pio, mmio: mmio) }
}

/// A function with `bars`, whose accesses `recorder` sees, claiming its BARs in `space`.
private func function(_ space: vmm_pci_space, _ recorder: AccessRecorder,
                      bars: [(UInt32, vmm_pci_bar_kind, UInt64)]) throws -> OpaquePointer {
    var space = space
    var dev: OpaquePointer?
    try #require(vmm_pci_dev_create(&space, 0x1234, 0x5678, 0x018000, 1, 0x1af4, 0x1100, nil, nil, &dev) == 0)
    for (bar, kind, size) in bars {
        try #require(vmm_pci_dev_add_bar(dev, bar, kind, size, false, AccessRecorder.handler, recorder.opaque) == 0)
    }
    return dev!
}

private func read32(_ dev: OpaquePointer, _ offset: UInt32) -> UInt32 {
    var value: UInt32 = 0
    withUnsafeMutableBytes(of: &value) { vmm_pci_dev_config_access(dev, offset, $0.baseAddress!.assumingMemoryBound(to: UInt8.self), 4, false) }
    return value
}

private func write(_ dev: OpaquePointer, _ offset: UInt32, _ value: UInt32, size: UInt32 = 4) {
    var v = value
    withUnsafeMutableBytes(of: &v) { vmm_pci_dev_config_access(dev, offset, $0.baseAddress!.assumingMemoryBound(to: UInt8.self), size, true) }
}

/// Config space, BARs and buses on buses of the test's own: the guest's
/// side of PCI, checked on any machine (no /dev/kvm).
@Suite("PCI configuration space, BARs and buses", .serialized)
struct PCITests {
    let buses: TestBuses

    init() throws {
        buses = try TestBuses()
    }

    func function(_ recorder: AccessRecorder, bars: [(UInt32, vmm_pci_bar_kind, UInt64)]) throws -> OpaquePointer {
        try HypervisorTests.function(buses.space, recorder, bars: bars)
    }

    func busCreate(_ ecam: UInt64, conf1: Bool, _ bus: inout OpaquePointer?) -> Int32 {
        var space = buses.space
        return vmm_pci_bus_create(&space, ecam, conf1, &bus)
    }

    func mmioRead(_ address: UInt64) -> UInt32 {
        var value: UInt32 = 0
        withUnsafeMutableBytes(of: &value) { _ = vmm_bus_dispatch(buses.mmio, address, $0.baseAddress!.assumingMemoryBound(to: UInt8.self), 4, false) }
        return value
    }

    @Test("BAR sizing: all-ones reads back the size mask with the type bits, for 32-bit, 64-bit and I/O BARs")
    func sizing() throws {
        let dev = try function(AccessRecorder(tag: 1, readBase: 0), bars: [
            (0, VMM_PCI_BAR_MEM64, 0x8000), (2, VMM_PCI_BAR_MEM32, 0x1000), (3, VMM_PCI_BAR_IO, 0x20)])
        defer { vmm_pci_dev_destroy(dev) }
        for offset in stride(from: UInt32(0x10), through: 0x1c, by: 4) { write(dev, offset, 0xffff_ffff) }
        #expect(read32(dev, 0x10) == 0xffff_8004)
        #expect(read32(dev, 0x14) == 0xffff_ffff)
        #expect(read32(dev, 0x18) == 0xffff_f000)
        #expect(read32(dev, 0x1c) == 0xffff_ffe1)
        #expect(read32(dev, 0x20) == 0, "an unused BAR stays zero")
        // Identity and the header are read-only.
        write(dev, 0x00, 0xdead_beef)
        #expect(read32(dev, 0x00) == 0x5678_1234)
        #expect(read32(dev, 0x08) == 0x0180_0001)
    }

    @Test("a BAR decodes only with the command bit, moves when reprogrammed (above 4 GiB too), and goes dark when disabled")
    func decodeAndMove() throws {
        let recorder = AccessRecorder(tag: 7, readBase: 0x40)
        let dev = try function(recorder, bars: [(0, VMM_PCI_BAR_MEM64, 0x1000)])
        defer { vmm_pci_dev_destroy(dev) }
        let before = vmm_bus_count(buses.mmio)
        try #require(vmm_pci_dev_set_bar_address(dev, 0, 0x1_0000_0000) == 0)
        #expect(vmm_bus_count(buses.mmio) == before, "no decode before the guest enables memory")
        write(dev, 0x04, 0x2, size: 2)
        #expect(vmm_pci_dev_bar_address(dev, 0) == 0x1_0000_0000)
        #expect(mmioRead(0x1_0000_0010) == 0x5352_5150)
        // The guest moves it: low dword, then high dword.
        write(dev, 0x10, 0xc000_0000)
        write(dev, 0x14, 0)
        #expect(vmm_pci_dev_bar_address(dev, 0) == 0xc000_0000)
        #expect(mmioRead(0x1_0000_0010) == 0xffff_ffff, "the old place reads as nothing")
        #expect(mmioRead(0xc000_0000) == 0x4342_4140)
        write(dev, 0x04, 0x0, size: 2)
        #expect(vmm_bus_count(buses.mmio) == before)
        #expect(mmioRead(0xc000_0000) == 0xffff_ffff)
    }

    @Test("a BAR's record (vm.info's device tree) follows its registers: placed, moved by the guest, kept while not decoding")
    func barRecord() throws {
        var space = buses.space
        var made: OpaquePointer?
        try #require(vmm_pci_dev_create(&space, 0x1234, 0x5678, 0x018000, 1, 0x1af4, 0x1100, nil, nil, &made) == 0)
        let dev = try #require(made)
        defer { vmm_pci_dev_destroy(dev) }
        let recorder = AccessRecorder(tag: 1, readBase: 0)
        try #require(vmm_pci_dev_add_bar(dev, 0, VMM_PCI_BAR_MEM64, 0x4000, true, AccessRecorder.handler, recorder.opaque) == 0)
        try #require(vmm_pci_dev_add_bar(dev, 2, VMM_PCI_BAR_IO, 0x20, false, AccessRecorder.handler, recorder.opaque) == 0)
        func bar(_ index: UInt32) -> PCIBar? {
            var info = vmm_pci_bar_info()
            vmm_pci_dev_bar(dev, index, &info)
            return info.size > 0 ? PCIBar(index: Int(index), info) : nil
        }
        try #require(vmm_pci_dev_set_bar_address(dev, 0, 0x1_0000_0000) == 0)
        try #require(vmm_pci_dev_set_bar_address(dev, 2, 0xc100) == 0)
        #expect(bar(0) == PCIBar(index: 0, kind: .mmio64, base: 0x1_0000_0000, size: 0x4000, prefetchable: true))
        #expect(bar(2) == PCIBar(index: 2, kind: .io, base: 0xc100, size: 0x20, prefetchable: false))
        #expect(bar(1) == nil && bar(3) == nil && bar(6) == nil, "the 64-bit BAR's upper half, an unused one, past the last")
        write(dev, 0x04, 0x3, size: 2)
        write(dev, 0x10, 0xc000_0000)
        write(dev, 0x14, 0)
        #expect(bar(0)?.base == 0xc000_0000)
        write(dev, 0x04, 0x0, size: 2)
        #expect(bar(0)?.base == 0xc000_0000 && vmm_pci_dev_bar_address(dev, 0) == 0, "not decoding, still where the guest put it")
    }

    @Test("a BAR the guest puts over another device's stays unmapped; the other device keeps working")
    func overlap() throws {
        let first = AccessRecorder(tag: 1, readBase: 0x10), second = AccessRecorder(tag: 2, readBase: 0x20)
        let a = try function(first, bars: [(0, VMM_PCI_BAR_MEM32, 0x1000)])
        let b = try function(second, bars: [(0, VMM_PCI_BAR_MEM32, 0x1000)])
        defer { vmm_pci_dev_destroy(a); vmm_pci_dev_destroy(b) }
        try #require(vmm_pci_dev_set_bar_address(a, 0, 0xc000_0000) == 0)
        try #require(vmm_pci_dev_set_bar_address(b, 0, 0xc000_1000) == 0)
        write(a, 0x04, 0x2, size: 2)
        write(b, 0x04, 0x2, size: 2)
        write(b, 0x10, 0xc000_0000)
        #expect(vmm_pci_dev_bar_address(b, 0) == 0)
        #expect(mmioRead(0xc000_0000) == 0x1312_1110)
        #expect(second.accesses.isEmpty)
        write(b, 0x10, 0xc000_2000)
        #expect(vmm_pci_dev_bar_address(b, 0) == 0xc000_2000, "moved somewhere free, it decodes again")
    }

    @Test("capabilities are linked from 0x34 and the status bit says so; writes to a read-only capability are ignored")
    func capabilities() throws {
        let dev = try function(AccessRecorder(tag: 1, readBase: 0), bars: [])
        defer { vmm_pci_dev_destroy(dev) }
        var first: UInt8 = 0, second: UInt8 = 0
        let body: [UInt8] = [0x09, 0, 8, 1, 2, 3, 4, 5]
        try #require(vmm_pci_dev_add_capability(dev, body, nil, 8, &first) == 0)
        try #require(vmm_pci_dev_add_capability(dev, body, nil, 8, &second) == 0)
        #expect(read32(dev, 0x34) & 0xff == UInt32(first))
        #expect(read32(dev, 0x04) >> 16 & 0x10 == 0x10)
        #expect((read32(dev, UInt32(first)) >> 8) & 0xff == UInt32(second))
        #expect((read32(dev, UInt32(second)) >> 8) & 0xff == 0)
        write(dev, UInt32(first) + 4, 0xffff_ffff)
        #expect(read32(dev, UInt32(first) + 4) == 0x0504_0302)
        #expect(read32(dev, 0x100) == 0, "extended space reads as zeros")
        write(dev, 0xffc, 0xffff_ffff)
        #expect(read32(dev, 0xffc) == 0, "and takes no writes")
        #expect(read32(dev, 0x1000) == 0xffff_ffff, "past the config space: nothing")
    }

    @Test("an assigned function's config space grows to what its device has: extended bytes answer, the mask still rules writes, a snapshot holds them")
    func extendedConfig() throws {
        let dev = try function(AccessRecorder(tag: 1, readBase: 0), bars: [])
        defer { vmm_pci_dev_destroy(dev) }
        var config = [UInt8](repeating: 0, count: 4096)
        config[0] = 0x34; config[1] = 0x12
        config[0x100] = 0x01; config[0x102] = 0x01  // an AER header
        config[0xffc] = 0xaa
        try #require(vmm_pci_dev_load_config(dev, config, 4096) == 0)
        #expect(read32(dev, 0x100) == 0x0001_0001)
        #expect(read32(dev, 0xffc) == 0xaa)
        write(dev, 0xffc, 0x5555_5555)
        #expect(read32(dev, 0xffc) == 0xaa, "no write mask: read-only")
        let mask: [UInt8] = [0xff, 0, 0, 0]
        vmm_pci_dev_set_wmask(dev, 0xffc, mask, 4)
        write(dev, 0xffc, 0x5555_5555)
        #expect(read32(dev, 0xffc) == 0x55)
        var saved = [UInt8](repeating: 0xee, count: 4096)
        vmm_pci_dev_save_config(dev, &saved)
        #expect(saved[0x100] == 1 && saved[0xffc] == 0x55)
    }

    @Test("conf1 and ECAM reach the same functions; absent slots and functions read as all-ones")
    func busAccess() throws {
        var bus: OpaquePointer?
        try #require(busCreate(0xe800_0000, conf1: true, &bus) == 0)
        defer { vmm_pci_bus_destroy(bus) }
        func conf1(_ address: UInt32, _ offset: UInt64 = 4, size: UInt32 = 4) -> UInt32 {
            var a = address
            withUnsafeMutableBytes(of: &a) { vmm_pci_conf1_io(bus.map { UnsafeMutableRawPointer($0) }, 0, $0.baseAddress!.assumingMemoryBound(to: UInt8.self), 4, true) }
            var v: UInt32 = 0
            withUnsafeMutableBytes(of: &v) { vmm_pci_conf1_io(bus.map { UnsafeMutableRawPointer($0) }, offset, $0.baseAddress!.assumingMemoryBound(to: UInt8.self), size, false) }
            return v
        }
        #expect(conf1(0x8000_0000) == 0x0d57_8086, "host bridge at 00:00.0")
        #expect(conf1(0x8000_0800) == 0xffff_ffff, "slot 1 is empty")
        #expect(conf1(0x0000_0000) == 0xffff_ffff, "without the enable bit nothing answers")
        #expect(conf1(0x8000_0008, 6, size: 2) == 0x0600, "a word at 0xcfe: class code high bytes")
        #expect(mmioRead(0xe800_0000) == 0x0d57_8086)
        #expect(mmioRead(0xe800_0000 + (1 << 12)) == 0xffff_ffff, "function 1 does not exist")
        #expect(mmioRead(0xe800_0000 + (1 << 15)) == 0xffff_ffff)
        let dev = try function(AccessRecorder(tag: 1, readBase: 0), bars: [])
        #expect(vmm_pci_bus_add(bus, 3, dev) == 0)
        #expect(vmm_pci_bus_add(bus, 3, dev) == -EEXIST)
        #expect(vmm_pci_bus_add(bus, 0, dev) == -EINVAL)
        #expect(mmioRead(0xe800_0000 + (3 << 15)) == 0x5678_1234)
        #expect(conf1(0x8000_1800) == 0x5678_1234)
    }

    @Test("a second PCI segment: its own ECAM with its own host bridge, and no claim on the conf1 ports segment 0 has")
    func secondSegment() throws {
        var first: OpaquePointer?, second: OpaquePointer?
        try #require(busCreate(0xe800_0000, conf1: true, &first) == 0)
        defer { vmm_pci_bus_destroy(first) }
        try #require(busCreate(0xe810_0000, conf1: false, &second) == 0)
        defer { vmm_pci_bus_destroy(second) }
        let dev = try function(AccessRecorder(tag: 1, readBase: 0), bars: [])
        #expect(vmm_pci_bus_add(first, 3, dev) == 0)
        #expect(mmioRead(0xe810_0000) == 0x0d57_8086, "segment 1's host bridge")
        #expect(mmioRead(0xe810_0000 + (3 << 15)) == 0xffff_ffff, "segment 0's function is not on segment 1")
        #expect(mmioRead(0xe800_0000 + (3 << 15)) == 0x5678_1234)
        var third: OpaquePointer?
        #expect(busCreate(0xe820_0000, conf1: true, &third) < 0, "conf1 belongs to segment 0")
    }

}

/// MSI-X on a real VM: its vectors are KVM GSI routes fed by irqfds.
@Suite("MSI-X", .enabled(if: Host.hasKVM, Host.kvmSkipReason), .serialized)
struct MSIXTests {
    @Test("MSI-X: table and PBA in a BAR; a masked vector's signal becomes a pending bit; garbage accesses are ignored")
    func msix() throws {
        let vm = try VirtualMachine(kvm: try KVMDevice(), memory: MemoryConfig(sizeBytes: 16 << 20))
        let dev = try function(vmm_pci_space(pio: vm.pioBus, mmio: vm.mmioBus), AccessRecorder(tag: 1, readBase: 0), bars: [])
        defer { vmm_pci_dev_destroy(dev) }
        var msix: OpaquePointer?
        try #require(vmm_msix_create(vm.handle, dev, 3, 0, 0x0, 0x800, &msix) == 0)
        defer { vmm_msix_destroy(msix) }
        let cap = UInt32(read32(dev, 0x34) & 0xff)
        #expect(read32(dev, cap) & 0xff == 0x11)
        #expect(read32(dev, cap) >> 16 == 2, "table size - 1")
        func table(_ offset: UInt64, _ value: UInt32? = nil, size: UInt32 = 4) -> UInt32 {
            var v = value ?? 0
            withUnsafeMutableBytes(of: &v) { vmm_msix_table_io(msix, offset, $0.baseAddress!.assumingMemoryBound(to: UInt8.self), size, value != nil) }
            return v
        }
        func pba() -> UInt32 {
            var v: UInt32 = 0
            withUnsafeMutableBytes(of: &v) { vmm_msix_pba_io(msix, 0, $0.baseAddress!.assumingMemoryBound(to: UInt8.self), 4, false) }
            return v
        }
        #expect(table(12) == 1, "vectors start masked")
        _ = table(16, 0xfee0_0000)
        _ = table(24, 0x41)
        #expect(table(16) == 0xfee0_0000 && table(24) == 0x41)
        #expect(vmm_msix_signal(msix, 1) == 0)
        #expect(pba() == 0b010, "masked (and MSI-X off): pending")
        #expect(vmm_msix_signal(msix, 7) == -EINVAL)
        // The owner's config_written hook forwards control writes, as virtio_pci.c does.
        func control(_ value: UInt32) {
            write(dev, cap + 2, value, size: 2)
            vmm_msix_config_written(msix, cap + 2, 2)
        }
        // Enable MSI-X with the function mask, then unmask vector 1: still pending under the function mask.
        control(0xc000)
        _ = table(28, 0)
        #expect(pba() == 0b010)
        // Clearing the function mask delivers it.
        control(0x8000)
        #expect(vmm_msix_enabled(msix))
        #expect(pba() == 0)
        // Unmasked, a signal goes straight to the irqfd (KVM consumes the
        // eventfd itself); masked again, it is pending again.
        #expect(vmm_msix_signal(msix, 1) == 0 && pba() == 0)
        _ = table(28, 1)
        #expect(vmm_msix_signal(msix, 1) == 0 && pba() == 0b010)
        #expect(vmm_msix_eventfd(msix, 1) >= 0 && vmm_msix_eventfd(msix, 3) == -1)
        // Unaligned, odd-sized and out-of-table accesses change nothing.
        _ = table(18, 0x1234)
        _ = table(17, 0x1, size: 1)
        _ = table(48, 0xffff_ffff)
        #expect(table(16) == 0xfee0_0000)
        #expect(table(48) == 0xffff_ffff, "past the table: reads as nothing")
    }
}

@Suite("CMOS RTC")
struct RTCTests {
    func read(_ rtc: OpaquePointer, _ index: UInt8) -> UInt8 {
        var i = index, v: UInt8 = 0
        vmm_rtc_io(UnsafeMutableRawPointer(rtc), 0, &i, 1, true)
        vmm_rtc_io(UnsafeMutableRawPointer(rtc), 1, &v, 1, false)
        return v
    }

    @Test("the host's UTC date in BCD, 24-hour mode, valid RAM, and the memory fields firmware fills")
    func clock() throws {
        var rtc: OpaquePointer?
        try #require(vmm_rtc_create(3 << 30, 1 << 30, &rtc) == 0)
        defer { vmm_rtc_destroy(rtc) }
        var now = time(nil)
        var tm = tm()
        gmtime_r(&now, &tm)
        func decimal(_ b: UInt8) -> Int { Int(b >> 4) * 10 + Int(b & 0xf) }
        #expect(decimal(read(rtc!, 0x32)) * 100 + decimal(read(rtc!, 0x09)) == Int(tm.tm_year) + 1900)
        #expect(decimal(read(rtc!, 0x08)) == Int(tm.tm_mon) + 1)
        #expect(decimal(read(rtc!, 0x07)) == Int(tm.tm_mday))
        #expect(decimal(read(rtc!, 0x06)) == Int(tm.tm_wday) + 1)
        #expect((0...59).contains(decimal(read(rtc!, 0x00))))
        #expect(read(rtc!, 0x0b) & 0x06 == 0x02, "24-hour, BCD")
        #expect(read(rtc!, 0x0d) == 0x80)
        // (3G - 16M) / 64K = 0xbf00 below 4G; 1G / 64K = 0x4000 above it.
        #expect(read(rtc!, 0x34) == 0x00 && read(rtc!, 0x35) == 0xbf)
        #expect(read(rtc!, 0x5b) == 0x00 && read(rtc!, 0x5c) == 0x40 && read(rtc!, 0x5d) == 0x00)
        // Time registers are the host's: a guest write does not stick; plain CMOS bytes do.
        var index: UInt8 = 0x09, value: UInt8 = 0x99
        vmm_rtc_io(UnsafeMutableRawPointer(rtc), 0, &index, 1, true)
        vmm_rtc_io(UnsafeMutableRawPointer(rtc), 1, &value, 1, true)
        #expect(read(rtc!, 0x09) != 0x99 || tm.tm_year % 100 == 99)
        index = 0x40
        vmm_rtc_io(UnsafeMutableRawPointer(rtc), 0, &index, 1, true)
        vmm_rtc_io(UnsafeMutableRawPointer(rtc), 1, &value, 1, true)
        #expect(read(rtc!, 0x40) == 0x99)
        #expect(read(rtc!, 0x80 | 0x0d) == 0x80, "bit 7 of the index is the NMI mask")
    }
}
