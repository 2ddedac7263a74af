/// The few AML constructs the DSDT needs (ACPI 6.5 §20), encoded by hand:
/// names, packages, devices, scopes and resource buffers, and the handful of
/// statements the Generic Event Device's method runs.
enum AML {
    /// PkgLength: the length of what follows, counting its own bytes.
    static func package(length body: [UInt8]) -> [UInt8] {
        let total = body.count + 1
        if total < 0x40 { return [UInt8(total)] + body }
        for extra in 1...3 {
            let total = body.count + 1 + extra
            guard total < 1 << (4 + 8 * extra) else { continue }
            var bytes = [UInt8(extra << 6) | UInt8(total & 0xf)]
            for i in 0..<extra { bytes.append(UInt8((total >> (4 + 8 * i)) & 0xff)) }
            return bytes + body
        }
        preconditionFailure("AML package too large")
    }

    /// A four-character name segment, padded with '_'.
    static func nameSegment(_ name: String) -> [UInt8] {
        let bytes = Array(name.utf8)
        precondition(bytes.count <= 4)
        return bytes + Array(repeating: UInt8(ascii: "_"), count: 4 - bytes.count)
    }

    static func integer(_ value: UInt64) -> [UInt8] {
        switch value {
        case 0: return [0x00]
        case 1: return [0x01]
        case ...0xff: return [0x0a, UInt8(value)]
        case ...0xffff: return [0x0b] + littleEndian(value, bytes: 2)
        case ...0xffff_ffff: return [0x0c] + littleEndian(value, bytes: 4)
        default: return [0x0e] + littleEndian(value, bytes: 8)
        }
    }

    static func string(_ text: String) -> [UInt8] { [0x0d] + Array(text.utf8) + [0] }

    static func name(_ name: String, _ value: [UInt8]) -> [UInt8] { [0x08] + nameSegment(name) + value }

    /// A Package of up to 255 elements, or a VarPackage beyond that.
    static func package(_ elements: [[UInt8]]) -> [UInt8] {
        if elements.count < 256 {
            return [0x12] + package(length: [UInt8(elements.count)] + elements.flatMap { $0 })
        }
        return [0x13] + package(length: integer(UInt64(elements.count)) + elements.flatMap { $0 })
    }

    static func device(_ name: String, _ body: [[UInt8]]) -> [UInt8] {
        [0x5b, 0x82] + package(length: nameSegment(name) + body.flatMap { $0 })
    }

    /// A scope under the root, e.g. `\_SB_`.
    static func scope(root name: String, _ body: [[UInt8]]) -> [UInt8] {
        [0x10] + package(length: [0x5c] + nameSegment(name) + body.flatMap { $0 })
    }

    /// EISA ID such as "PNP0501", as the compressed DWORD ASL's EisaId() makes.
    static func eisaID(_ id: String) -> [UInt8] {
        let c = Array(id.utf8)
        let vendor = UInt32(c[0] - 0x40) << 10 | UInt32(c[1] - 0x40) << 5 | UInt32(c[2] - 0x40)
        let product = UInt32(id.suffix(4), radix: 16)!
        return [0x0c, UInt8(vendor >> 8), UInt8(vendor & 0xff), UInt8(product >> 8), UInt8(product & 0xff)]
    }

    /// A resource template (§6.4) as a Buffer, end tag appended.
    static func resources(_ descriptors: [[UInt8]]) -> [UInt8] {
        let bytes: [UInt8] = descriptors.flatMap { $0 } + [0x79, 0x00]
        return [0x11] + package(length: integer(UInt64(bytes.count)) + bytes)
    }

    /// IO(Decode16, base, base, 1, length).
    static func ioPorts(base: UInt16, length: UInt8) -> [UInt8] {
        [0x47, 0x01] + littleEndian(UInt64(base), bytes: 2) + littleEndian(UInt64(base), bytes: 2) + [0x01, length]
    }

    /// `count` ports from `base`, in as many IO descriptors as it takes (255 ports each).
    static func ioPorts(base: UInt16, count: Int) -> [[UInt8]] {
        stride(from: 0, to: count, by: 255).map { ioPorts(base: base + UInt16($0), length: UInt8(min(255, count - $0))) }
    }

    /// IRQNoFlags(){irq}: edge-triggered, active-high ISA interrupt.
    static func irq(_ irq: UInt8) -> [UInt8] {
        let mask = UInt16(1) << irq
        return [0x22, UInt8(mask & 0xff), UInt8(mask >> 8)]
    }

    enum AddressSpace: UInt8 {
        case memory = 0
        case io = 1
        case busNumber = 2
    }

    /// A bridge's window (producer, fixed min and max, no translation):
    /// general flags 0x0c; I/O windows take the entire range.
    static func wordAddress(type: AddressSpace, min: UInt16, max: UInt16) -> [UInt8] {
        [0x88, 13, 0, type.rawValue, 0x0c, type == .io ? 0x03 : 0x00]
            + [0, 0] + littleEndian(UInt64(min), bytes: 2) + littleEndian(UInt64(max), bytes: 2)
            + [0, 0] + littleEndian(UInt64(max) - UInt64(min) + 1, bytes: 2)
    }

    /// A 32-bit read-write, non-cacheable memory window.
    static func dwordMemory(min: UInt32, max: UInt32) -> [UInt8] {
        [0x87, 23, 0, AddressSpace.memory.rawValue, 0x0c, 0x01]
            + littleEndian(0, bytes: 4) + littleEndian(UInt64(min), bytes: 4) + littleEndian(UInt64(max), bytes: 4)
            + littleEndian(0, bytes: 4) + littleEndian(UInt64(max) - UInt64(min) + 1, bytes: 4)
    }

    /// A 64-bit read-write, non-cacheable memory window.
    static func qwordMemory(min: UInt64, max: UInt64) -> [UInt8] {
        [0x8a, 43, 0, AddressSpace.memory.rawValue, 0x0c, 0x01]
            + littleEndian(0, bytes: 8) + littleEndian(min, bytes: 8) + littleEndian(max, bytes: 8)
            + littleEndian(0, bytes: 8) + littleEndian(max - min + 1, bytes: 8)
    }

    /// Memory32Fixed(ReadWrite, base, length).
    static func memory32Fixed(base: UInt32, length: UInt32) -> [UInt8] {
        [0x86, 9, 0, 0x01] + littleEndian(UInt64(base), bytes: 4) + littleEndian(UInt64(length), bytes: 4)
    }

    /// Interrupt(ResourceConsumer, Edge, ActiveHigh, Exclusive) {gsi}: the
    /// extended descriptor, which reaches GSIs past the ISA 15.
    static func edgeInterrupt(_ gsi: UInt32) -> [UInt8] {
        [0x89, 6, 0, 0x03, 1] + littleEndian(UInt64(gsi), bytes: 4)
    }

    /// `\_SB_.NAME`, `\_SB_.PCI0.S01_`: a path from the root.
    static func rootPath(_ segments: String...) -> [UInt8] {
        let names = segments.flatMap(nameSegment)
        switch segments.count {
        case 1: return [0x5c] + names
        case 2: return [0x5c, 0x2e] + names
        default: return [0x5c, 0x2f, UInt8(segments.count)] + names
        }
    }

    /// OperationRegion(name, SystemIO, port, length).
    static func ioRegion(_ name: String, port: UInt16, length: UInt16) -> [UInt8] {
        [0x5b, 0x80] + nameSegment(name) + [0x01] + integer(UInt64(port)) + integer(UInt64(length))
    }

    /// Field(region, ByteAcc, NoLock, WriteAsZeros) { name, 8, … }.
    static func byteFields(region: String, _ names: [String]) -> [UInt8] {
        [0x5b, 0x81] + package(length: nameSegment(region) + [0x41] + names.flatMap { nameSegment($0) + [8] })
    }

    /// Field(region, DWordAcc, NoLock, WriteAsZeros) { name, 32, … }.
    static func dwordFields(region: String, _ names: [String]) -> [UInt8] {
        [0x5b, 0x81] + package(length: nameSegment(region) + [0x43] + names.flatMap { nameSegment($0) + [32] })
    }

    /// Method(name, arguments, Serialized) { body }.
    static func method(_ name: String, arguments: UInt8, _ body: [[UInt8]]) -> [UInt8] {
        [0x14] + package(length: nameSegment(name) + [0x08 | arguments] + body.flatMap { $0 })
    }

    static let local0: [UInt8] = [0x60]
    static let local1: [UInt8] = [0x61]
    static let arg0: [UInt8] = [0x68]
    static let arg1: [UInt8] = [0x69]

    /// A method call: its path, then its arguments.
    static func call(_ path: [UInt8], _ arguments: [[UInt8]]) -> [UInt8] { path + arguments.flatMap { $0 } }

    /// Notify(object, value) with a value computed at run time.
    static func notify(_ object: [UInt8], value: [UInt8]) -> [UInt8] { [0x86] + object + value }

    /// Store(source, target).
    static func store(_ source: [UInt8], _ target: [UInt8]) -> [UInt8] { [0x70] + source + target }

    /// If (And(operand, mask)) { body }.
    static func ifAnyBit(_ operand: [UInt8], _ mask: UInt64, _ body: [[UInt8]]) -> [UInt8] {
        [0xa0] + package(length: [0x7b] + operand + integer(mask) + [0x00] + body.flatMap { $0 })
    }

    /// CreateQWordField(buffer, byteIndex, name): `name` is the QWord at
    /// `byteIndex` of the named buffer.
    static func createQWordField(_ buffer: String, _ byteIndex: UInt64, _ name: String) -> [UInt8] {
        [0x8f] + nameSegment(buffer) + integer(byteIndex) + nameSegment(name)
    }

    /// ShiftLeft(operand, count), as a value.
    static func shiftLeft(_ operand: [UInt8], _ count: UInt64) -> [UInt8] { [0x79] + operand + integer(count) + [0x00] }

    /// Or(a, b, target).
    static func or(_ a: [UInt8], _ b: [UInt8], into target: [UInt8]) -> [UInt8] { [0x7d] + a + b + target }

    /// Add(a, b), as a value.
    static func add(_ a: [UInt8], _ b: [UInt8]) -> [UInt8] { [0x72] + a + b + [0x00] }

    /// Subtract(a, b, target).
    static func subtract(_ a: [UInt8], _ b: [UInt8], into target: [UInt8]) -> [UInt8] { [0x74] + a + b + target }

    /// Return(value).
    static func returnValue(_ value: [UInt8]) -> [UInt8] { [0xa4] + value }

    /// Buffer() { bytes }.
    static func buffer(_ bytes: [UInt8]) -> [UInt8] { [0x11] + package(length: integer(UInt64(bytes.count)) + bytes) }

    /// Notify(object, value).
    static func notify(_ object: [UInt8], _ value: UInt64) -> [UInt8] { [0x86] + object + integer(value) }

    static func littleEndian(_ value: UInt64, bytes: Int) -> [UInt8] {
        (0..<bytes).map { UInt8((value >> (8 * UInt64($0))) & 0xff) }
    }
}
