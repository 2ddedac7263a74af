import Foundation
import Testing
@testable import Hypervisor

@Suite("ACPI tables")
struct ACPITests {
    static let iasl = "/usr/bin/iasl"

    /// ACPICA's disassembly of one table, or its complaint.
    private func disassemble(_ table: [UInt8]) throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("acpi-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let file = dir.appendingPathComponent("table.dat")
        try Data(table).write(to: file)
        let r = run(Self.iasl, ["-d", file.path])
        let dsl = (try? String(contentsOf: dir.appendingPathComponent("table.dsl"), encoding: .utf8)) ?? ""
        return r.status == 0 ? dsl : "iasl failed: \(r.stdout) \(r.stderr)"
    }

    @Test("every vCPU up to max in the MADT, those after boot online-capable, not enabled")
    func madt() {
        let madt = ACPITables(cpus: CPUDescription(boot: 2, max: 5), memoryBytes: 1 << 30).madt()
        let entries: [[UInt8]] = madt[44...].chunked(8).prefix { $0.first == 0 }.map { Array($0) }
        let expected: [[UInt8]] = (0..<5).map { (cpu: Int) -> [UInt8] in
            [0, 8, UInt8(cpu), UInt8(cpu), cpu < 2 ? 1 : 2, 0, 0, 0]
        }
        #expect(entries == expected)
    }

    @Test("the DSDT's processors and hotplug methods are AML that ACPICA reads back",
          .enabled(if: FileManager.default.isExecutableFile(atPath: iasl), "needs iasl (acpica-tools)"))
    func dsdt() throws {
        let dsl = try disassemble(ACPITables(cpus: CPUDescription(boot: 1, max: 3), memoryBytes: 1 << 30).dsdt())
        #expect(dsl.contains("Device (CPUS)"), "\(dsl)")
        for cpu in ["C000", "C001", "C002"] { #expect(dsl.contains("Device (\(cpu))"), "\(cpu)") }
        #expect(dsl.components(separatedBy: "_HID, \"ACPI0007\"").count == 4)
        #expect(dsl.contains("Method (CSCN, 0, Serialized)"))
        #expect(dsl.contains("Notify (\\_SB.CPUS.C002, 0x03)"), "\(dsl)")
        #expect(dsl.contains("\\_SB.CPUS.CSCN ()"), "\(dsl)")
        #expect(dsl.contains("OperationRegion (CPST, SystemIO, 0xAF00, 0x03)"), "\(dsl)")
        #expect(dsl.contains("OperationRegion (CPEV, SystemIO, 0xB000, 0x03)"), "\(dsl)")
        // The boot processor has no _EJ0: two of them for three vCPUs, and the PCI slots'.
        #expect(dsl.contains("P001 = One") && dsl.contains("P002 = One"), "\(dsl)")
        #expect(!dsl.contains("P000 = One"))
        // The CPU hotplug ports are the motherboard's: 0xaf00-0xb0ff in three I/O descriptors.
        #expect(dsl.contains("0xAF00,             // Range Minimum") && dsl.contains("0xAFFF,             // Range Minimum")
                && dsl.contains("0xB0FE,             // Range Minimum") && dsl.contains("0x02,               // Length"), "\(dsl)")
    }

    @Test("two PCI segments: an MCFG entry, a host bridge with hotplug slots and a share of both windows each")
    func segments() throws {
        let tables = ACPITables(cpus: CPUDescription(boot: 1, max: 1), memoryBytes: 1 << 30, pciSegments: 2)
        let mcfg = PCIDescription(memoryBytes: 1 << 30, segments: 2).mcfg()
        #expect(mcfg.count == 44 + 2 * 16)
        #expect(Array(mcfg[44..<56]) == [0, 0, 0, 0xe8, 0, 0, 0, 0, 0, 0, 0, 0])
        #expect(Array(mcfg[60..<72]) == [0, 0, 0x10, 0xe8, 0, 0, 0, 0, 1, 0, 0, 0])
        guard FileManager.default.isExecutableFile(atPath: Self.iasl) else { return }
        let dsl = try disassemble(tables.dsdt())
        #expect(dsl.contains("Device (PC01)") && dsl.contains("Name (_SEG, One)"), "\(dsl)")
        // Segment 0's part of each window ends where segment 1's starts.
        let zero = GuestLayout.pciMMIO64(memoryBytes: 1 << 30, segment: 0, of: 2)
        let one = GuestLayout.pciMMIO64(memoryBytes: 1 << 30, segment: 1, of: 2)
        #expect(zero.end == one.start && zero.size == 32 << 30)
        let low0 = GuestLayout.pciMMIO32(segment: 0, of: 2), low1 = GuestLayout.pciMMIO32(segment: 1, of: 2)
        #expect(low0.start == GuestLayout.pciMMIO32.start && low0.end == low1.start && low1.end == GuestLayout.pciMMIO32.end)
        #expect(dsl.contains("0xD4000000,         // Range Minimum") && dsl.contains("0xD3FFFFFF,         // Range Maximum"), "\(dsl)")
        // Hotplug on both: PSCN selects each segment and has its bridge notify
        // its slots; each slot's _EJ0 names its segment and slot in one write.
        #expect(dsl.contains("PSEG = Zero") && dsl.contains("\\_SB.PCI0.PCNT (PCIU, PCID)")
                && dsl.contains("PSEG = One") && dsl.contains("\\_SB.PC01.PCNT (PCIU, PCID)"), "\(dsl)")
        #expect(dsl.contains("\\_SB.PHPR.PCEJ = 0x0105") && dsl.contains("\\_SB.PHPR.PCEJ = 0x05"), "\(dsl)")
        #expect(dsl.components(separatedBy: "Method (PCNT, 2, Serialized)").count == 3, "\(dsl)")
        #expect(dsl.contains("Notify (S1F, 0x03)"), "\(dsl)")
    }

    @Test("with hotplug_size, memory devices whose _CRS reads their slot's registers; without, none",
          .enabled(if: FileManager.default.isExecutableFile(atPath: iasl), "needs iasl (acpica-tools)"))
    func memoryHotplug() throws {
        let dsl = try disassemble(ACPITables(cpus: CPUDescription(boot: 1, max: 1), memoryBytes: 1 << 30, hotplugBytes: 1 << 30).dsdt())
        #expect(dsl.contains("Device (MHPC)") && dsl.contains("Device (M00F)") && !dsl.contains("Device (M010)"), "\(dsl)")
        #expect(dsl.components(separatedBy: "EisaId (\"PNP0C80\")").count == 17)
        #expect(dsl.contains("CreateQWordField (MR64, \\_SB.MHPC.M003._CRS._Y03._MIN, MINL)")
                && dsl.contains("CreateQWordField (MR64, \\_SB.MHPC.M003._CRS._Y03._LEN, LENL)"), "\(dsl)")
        #expect(dsl.contains("MINL = ((BH03 << 0x20) | BL03)") && dsl.contains("MAXL = ((MINL + LENL) - One)"), "\(dsl)")
        #expect(dsl.contains("\\_SB.MHPC.MSCN ()") && dsl.contains("Notify (\\_SB.MHPC.M00F, One)"), "\(dsl)")
        let without = try disassemble(ACPITables(cpus: CPUDescription(boot: 1, max: 1), memoryBytes: 1 << 30).dsdt())
        #expect(!without.contains("MHPC"))
    }

    @Test("with the most vCPUs and PCI segments there can be, the tables still end below the reset vector")
    func largest() throws {
        let tables = try ACPITables(cpus: CPUDescription(boot: 1, max: CPUsConfig.maxVCPUs), memoryBytes: 1 << 30,
                                    pciSegments: PlatformConfig.maxPCISegments).build()
        let ends = tables.map { $0.address + UInt64($0.bytes.count) }
        #expect(ends.max()! <= ResetVector.address)
        let sorted = tables.sorted { $0.address < $1.address }
        for (a, b) in zip(sorted, sorted.dropFirst()) { #expect(a.address + UInt64(a.bytes.count) <= b.address) }
    }
}

private extension ArraySlice where Element == UInt8 {
    func chunked(_ size: Int) -> [ArraySlice<UInt8>] {
        stride(from: startIndex, to: endIndex, by: size).map { self[$0..<Swift.min($0 + size, endIndex)] }
    }
}
