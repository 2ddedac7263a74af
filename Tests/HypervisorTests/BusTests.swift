import CVMMCore
import CVMMTestHooks
import Foundation
import Synchronization
import Testing

/// Records every access a bus hands to it; used by the bus and KVM tests.
final class AccessRecorder: Sendable {
    struct Access: Equatable, CustomStringConvertible {
        let tag: UInt8
        let offset: UInt64
        let size: UInt32
        let isWrite: Bool
        let value: UInt64
        var description: String { "\(tag)@\(offset)/\(size)\(isWrite ? "w" : "r")=0x\(String(value, radix: 16))" }
    }

    private let log = Mutex<[Access]>([])
    /// Reads answer `readBase + offset + i` in byte i, so each read's value shows where it landed.
    let readBase: UInt8
    let tag: UInt8

    init(tag: UInt8, readBase: UInt8) {
        self.tag = tag
        self.readBase = readBase
    }

    var accesses: [Access] { log.withLock { $0 } }

    var opaque: UnsafeMutableRawPointer { Unmanaged.passUnretained(self).toOpaque() }

    static let handler: vmm_io_fn = { opaque, offset, data, size, isWrite in
        let recorder = Unmanaged<AccessRecorder>.fromOpaque(opaque!).takeUnretainedValue()
        var value: UInt64 = 0
        for i in 0..<Int(size) {
            if !isWrite { data![i] = recorder.readBase &+ UInt8(truncatingIfNeeded: offset) &+ UInt8(i) }
            value |= UInt64(data![i]) << (8 * UInt64(i))
        }
        let access = Access(tag: recorder.tag, offset: offset, size: size, isWrite: isWrite, value: value)
        recorder.log.withLock { $0.append(access) }
    }
}

@Suite("PIO/MMIO bus")
struct BusTests {
    /// The C bus is built for concurrent readers and a writer; that is what this wraps.
    final class Bus: @unchecked Sendable {
        let pointer: OpaquePointer
        init() {
            var bus: OpaquePointer?
            precondition(vmm_bus_create(&bus) == 0)
            pointer = bus!
        }
        deinit { vmm_bus_destroy(pointer) }

        func read(_ addr: UInt64, size: UInt32) -> (hit: Bool, value: UInt64) {
            var bytes = [UInt8](repeating: 0, count: 8)
            let hit = vmm_bus_dispatch(pointer, addr, &bytes, size, false)
            let value = bytes.prefix(Int(size)).enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) }
            return (hit, value)
        }
    }

    @Test("dispatch hands the handler offsets relative to its base")
    func dispatch() {
        let bus = Bus()
        let device = AccessRecorder(tag: 1, readBase: 0x40)
        #expect(vmm_bus_register(bus.pointer, 0x1000, 0x10, AccessRecorder.handler, device.opaque) == 0)
        #expect(bus.read(0x1004, size: 2) == (true, 0x4544))
        var byte: UInt8 = 0x7e
        #expect(vmm_bus_dispatch(bus.pointer, 0x100f, &byte, 1, true))
        #expect(device.accesses == [
            .init(tag: 1, offset: 4, size: 2, isWrite: false, value: 0x4544),
            .init(tag: 1, offset: 15, size: 1, isWrite: true, value: 0x7e),
        ])
    }

    @Test("unassigned and straddling accesses read all ones and never reach a device")
    func unassigned() {
        let bus = Bus()
        let device = AccessRecorder(tag: 1, readBase: 0)
        #expect(vmm_bus_register(bus.pointer, 0x1000, 0x10, AccessRecorder.handler, device.opaque) == 0)
        #expect(bus.read(0x0fff, size: 1) == (false, 0xff))
        #expect(bus.read(0x1010, size: 4) == (false, 0xffff_ffff))
        #expect(bus.read(0x100e, size: 4) == (false, 0xffff_ffff), "straddles the end")
        #expect(bus.read(0x0ffe, size: 4) == (false, 0xffff_ffff), "straddles the start")
        #expect(bus.read(UInt64.max, size: 8) == (false, UInt64.max))
        var data: [UInt8] = [1, 2]
        #expect(!vmm_bus_dispatch(bus.pointer, 0x2000, &data, 2, true))
        #expect(data == [1, 2], "a dropped write leaves the buffer alone")
        #expect(device.accesses.isEmpty)
    }

    @Test("overlaps, empty and wrapping ranges are refused; remove and move work")
    func registration() {
        let bus = Bus()
        let a = AccessRecorder(tag: 1, readBase: 0x10)
        let b = AccessRecorder(tag: 2, readBase: 0x20)
        let h = AccessRecorder.handler
        #expect(vmm_bus_register(bus.pointer, 0x100, 0x10, h, a.opaque) == 0)
        #expect(vmm_bus_register(bus.pointer, 0x10f, 1, h, b.opaque) == -EEXIST)
        #expect(vmm_bus_register(bus.pointer, 0xf0, 0x11, h, b.opaque) == -EEXIST)
        #expect(vmm_bus_register(bus.pointer, 0x0, 0x1000, h, b.opaque) == -EEXIST)
        #expect(vmm_bus_register(bus.pointer, 0x200, 0, h, b.opaque) == -EINVAL)
        #expect(vmm_bus_register(bus.pointer, UInt64.max, 2, h, b.opaque) == -EINVAL)
        #expect(vmm_bus_register(bus.pointer, 0x110, 0x10, h, b.opaque) == 0, "adjacent is fine")
        #expect(vmm_bus_register(bus.pointer, 0x50, 0x10, h, b.opaque) == 0, "before the others")
        #expect(vmm_bus_count(bus.pointer) == 3)

        #expect(vmm_bus_move(bus.pointer, 0x100, 0x115) == -EEXIST)
        #expect(vmm_bus_move(bus.pointer, 0x100, 0x8000) == 0)
        #expect(bus.read(0x100, size: 1).hit == false)
        #expect(bus.read(0x8001, size: 1) == (true, 0x11))
        #expect(vmm_bus_move(bus.pointer, 0x100, 0x9000) == -ENOENT)

        #expect(vmm_bus_unregister(bus.pointer, 0x8001) == -ENOENT)
        #expect(vmm_bus_unregister(bus.pointer, 0x8000) == 0)
        #expect(bus.read(0x8001, size: 1).hit == false)
        #expect(vmm_bus_count(bus.pointer) == 2)
    }

    @Test("lookups stay correct while another thread moves ranges")
    func concurrentMoves() async {
        let bus = Bus()
        let device = AccessRecorder(tag: 1, readBase: 0x30)
        #expect(vmm_bus_register(bus.pointer, 0x1000, 0x10, AccessRecorder.handler, device.opaque) == 0)
        let mover = Thread {
            for i in 0..<2000 {
                let (from, to): (UInt64, UInt64) = i % 2 == 0 ? (0x1000, 0x2000) : (0x2000, 0x1000)
                precondition(vmm_bus_move(bus.pointer, from, to) == 0)
            }
        }
        mover.start()
        var wrong = 0
        for _ in 0..<50_000 {
            for base: UInt64 in [0x1000, 0x2000] {
                let (hit, value) = bus.read(base + 2, size: 1)
                if hit ? value != 0x32 : value != 0xff { wrong += 1 }
            }
        }
        while !mover.isFinished { usleep(1000) }
        #expect(wrong == 0)
        #expect(device.accesses.allSatisfy { $0.offset == 2 })
    }

    @Test("a million changes while two threads look ranges up: every lookup right, the heap the same at the end as halfway")
    func churnIsBounded() {
        var result = vmm_test_bus_churn()
        #expect(vmm_test_bus_churn(1_000_000, 2, &result) == 0)
        #expect(result.wrong == 0, "\(result.wrong) of \(result.lookups) lookups wrong")
        #expect(result.lookups > 0)
        // Retired tables kept until the end cost 2.5 GB for a million changes.
        #expect(result.heap_after <= result.heap_middle + 4096 && result.heap_middle <= result.heap_before + 4096,
                "heap \(result.heap_before) → \(result.heap_middle) → \(result.heap_after) bytes")
    }
}
