import Testing
@testable import Hypervisor

@Suite("ELF notes")
struct ELFImageTests {
    private func note(name: String, type: UInt32, desc: [UInt8]) -> [UInt8] {
        var bytes: [UInt8] = []
        let nameBytes = Array(name.utf8) + [0]
        for value in [UInt32(nameBytes.count), UInt32(desc.count), type] {
            bytes += withUnsafeBytes(of: value.littleEndian, Array.init)
        }
        bytes += nameBytes + Array(repeating: 0, count: (4 - nameBytes.count % 4) % 4)
        bytes += desc + Array(repeating: 0, count: (4 - desc.count % 4) % 4)
        return bytes
    }

    @Test("finds the PVH entry after other notes, 32- or 64-bit descriptor")
    func findsEntry() {
        let other = note(name: "GNU", type: 3, desc: [1, 2, 3, 4, 5])
        #expect(ELFImage.pvhEntry(inNotes: other + note(name: "Xen", type: 18, desc: [0x00, 0x10, 0x00, 0x01])) == 0x0100_1000)
        #expect(ELFImage.pvhEntry(inNotes: note(name: "Xen", type: 18, desc: [0x78, 0x56, 0x34, 0x12, 0, 0, 0, 0])) == 0x1234_5678)
    }

    @Test("ignores other owners and types, and survives truncated or hostile notes")
    func rejectsOthers() {
        #expect(ELFImage.pvhEntry(inNotes: note(name: "Xen", type: 17, desc: [1, 0, 0, 0])) == nil)
        #expect(ELFImage.pvhEntry(inNotes: note(name: "Linux", type: 18, desc: [1, 0, 0, 0])) == nil)
        let good = note(name: "Xen", type: 18, desc: [1, 0, 0, 0])
        #expect(ELFImage.pvhEntry(inNotes: Array(good.dropLast(2))) == nil)
        #expect(ELFImage.pvhEntry(inNotes: [0xff, 0xff, 0xff, 0x7f, 0xff, 0xff, 0xff, 0x7f, 18, 0, 0, 0]) == nil)
        #expect(ELFImage.pvhEntry(inNotes: []) == nil)
    }
}
