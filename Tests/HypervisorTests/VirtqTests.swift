import CVMMCore
import Glibc
import Testing

/// A split virtqueue laid out in a test buffer that stands in for guest
/// RAM (guest address 0 = the buffer's start), so hostile rings can be
/// written byte by byte without a VM.
final class TestQueue {
    static let ramSize = 1 << 20
    static let desc: UInt64 = 0x1000, avail: UInt64 = 0x2000, used: UInt64 = 0x3000, data: UInt64 = 0x10000

    let ram = UnsafeMutableRawBufferPointer.allocate(byteCount: ramSize, alignment: 4096)
    let region: UnsafeMutablePointer<vmm_mem_region>
    /// Allocated: the queue keeps its address (for the dirty log).
    let mem: UnsafeMutablePointer<vmm_gmem>
    var queue = vmm_virtq()
    let size: UInt16
    private var availIdx: UInt16 = 0

    init(size: UInt16 = 8, eventIdx: Bool = false) throws {
        ram.initializeMemory(as: UInt8.self, repeating: 0)
        region = .allocate(capacity: 1)
        region.initialize(to: vmm_mem_region(gpa: 0, size: UInt64(Self.ramSize), hva: ram.baseAddress, slot: 0, fd: -1))
        mem = .allocate(capacity: 1)
        mem.initialize(to: vmm_gmem(regions: region, count: 1, live_count: nil, dirty: nil, iommu: nil))
        self.size = size
        try #require(vmm_virtq_init(&queue, mem, size, Self.desc, Self.avail, Self.used, eventIdx) == 0)
    }

    deinit {
        mem.deallocate()
        region.deallocate()
        ram.deallocate()
    }

    func put<T: FixedWidthInteger>(_ value: T, at gpa: UInt64) {
        ram.storeBytes(of: value.littleEndian, toByteOffset: Int(gpa), as: T.self)
    }

    func get<T: FixedWidthInteger>(_ type: T.Type, at gpa: UInt64) -> T {
        T(littleEndian: ram.load(fromByteOffset: Int(gpa), as: T.self))
    }

    /// Descriptor `index` of the table at `table`.
    func descriptor(_ index: Int, addr: UInt64, len: UInt32, flags: UInt16 = 0, next: UInt16 = 0, table: UInt64 = desc) {
        let at = table + UInt64(16 * index)
        put(addr, at: at)
        put(len, at: at + 8)
        put(flags, at: at + 12)
        put(next, at: at + 14)
    }

    /// Offers `head` in the avail ring.
    func offer(_ head: UInt16) {
        put(head, at: Self.avail + 4 + 2 * UInt64(availIdx % size))
        availIdx &+= 1
        put(availIdx, at: Self.avail + 2)
    }

    func setAvailIdx(_ idx: UInt16) { availIdx = idx; put(idx, at: Self.avail + 2) }

    func pop() -> (Int32, vmm_virtq_chain) {
        let chain = UnsafeMutablePointer<vmm_virtq_chain>.allocate(capacity: 1)
        defer { chain.deallocate() }
        let r = vmm_virtq_pop(&queue, mem, chain)
        return (r, chain.pointee)
    }
}

let NEXT: UInt16 = 1, WRITE: UInt16 = 2, INDIRECT: UInt16 = 4

@Suite("split virtqueues against hostile rings")
struct VirtqTests {
    @Test("a read-then-write chain comes out checked, with host pointers into RAM")
    func wellFormed() throws {
        let q = try TestQueue()
        q.descriptor(0, addr: TestQueue.data, len: 16, flags: NEXT, next: 3)
        q.descriptor(3, addr: TestQueue.data + 0x100, len: 512, flags: WRITE)
        q.offer(0)
        let (r, chain) = q.pop()
        #expect(r == 1)
        #expect(chain.head == 0 && chain.count == 2 && chain.readable == 16 && chain.writable == 512)
        #expect(UnsafeRawPointer(chain.bufs.0.hva) == UnsafeRawPointer(q.ram.baseAddress! + Int(TestQueue.data)))
        #expect(q.pop().0 == 0, "nothing more offered")

        vmm_virtq_push(&q.queue, 0, 513)
        #expect(q.get(UInt16.self, at: TestQueue.used + 2) == 1)
        #expect(q.get(UInt32.self, at: TestQueue.used + 4) == 0 && q.get(UInt32.self, at: TestQueue.used + 8) == 513)
    }

    /// Each hostile ring and the error it must give.
    static let hostileCases: [String: Int32] = [
        "a descriptor loop": -ELOOP,
        "a buffer past the end of RAM": -EFAULT,
        "a buffer address that wraps": -EFAULT,
        "a head outside the table": -EINVAL,
        "a next outside the table": -EINVAL,
        "more offered than the queue holds": -EINVAL,
        "a readable buffer after a writable one": -EPROTO,
        "an indirect table inside an indirect table": -EPROTO,
        "an indirect table of a partial descriptor": -EPROTO,
        "an indirect table in the middle of a chain": -EPROTO,
        "a loop inside an indirect table": -ELOOP,
        "an indirect table longer than a chain may be": -ELOOP,
    ]

    static func write(_ what: String, into q: TestQueue) {
        switch what {
        case "a descriptor loop":
            q.descriptor(0, addr: TestQueue.data, len: 8, flags: NEXT, next: 1)
            q.descriptor(1, addr: TestQueue.data, len: 8, flags: NEXT, next: 0)
        case "a buffer past the end of RAM": q.descriptor(0, addr: UInt64(TestQueue.ramSize) - 4, len: 8)
        case "a buffer address that wraps": q.descriptor(0, addr: UInt64.max - 2, len: 8)
        case "a head outside the table": q.offer(8); return
        case "a next outside the table": q.descriptor(0, addr: TestQueue.data, len: 8, flags: NEXT, next: 200)
        case "more offered than the queue holds": q.setAvailIdx(9); return
        case "a readable buffer after a writable one":
            q.descriptor(0, addr: TestQueue.data, len: 8, flags: WRITE | NEXT, next: 1)
            q.descriptor(1, addr: TestQueue.data, len: 8)
        case "an indirect table inside an indirect table":
            q.descriptor(0, addr: 0x5000, len: 32, flags: INDIRECT)
            q.descriptor(0, addr: 0x6000, len: 16, flags: INDIRECT, table: 0x5000)
        case "an indirect table of a partial descriptor": q.descriptor(0, addr: 0x5000, len: 20, flags: INDIRECT)
        case "an indirect table in the middle of a chain":
            q.descriptor(0, addr: TestQueue.data, len: 8, flags: NEXT, next: 1)
            q.descriptor(1, addr: 0x5000, len: 16, flags: INDIRECT)
        case "a loop inside an indirect table":
            q.descriptor(0, addr: 0x5000, len: 32, flags: INDIRECT)
            q.descriptor(0, addr: TestQueue.data, len: 8, flags: NEXT, next: 1, table: 0x5000)
            q.descriptor(1, addr: TestQueue.data, len: 8, flags: NEXT, next: 0, table: 0x5000)
        case "an indirect table longer than a chain may be":
            q.descriptor(0, addr: 0x8000, len: UInt32(16 * (Int(VMM_VIRTQ_MAX_CHAIN) + 1)), flags: INDIRECT)
        default: Issue.record("no setup for \(what)")
        }
        q.offer(0)
    }

    @Test("malformed queues are error values, never a crash or a hang", arguments: hostileCases.keys.sorted())
    func hostile(what: String) throws {
        let q = try TestQueue()
        Self.write(what, into: q)
        #expect(q.pop().0 == Self.hostileCases[what], "\(what)")
    }

    @Test("an indirect table is walked in its own index space")
    func indirect() throws {
        let q = try TestQueue()
        q.descriptor(5, addr: 0x5000, len: 48, flags: INDIRECT)
        q.descriptor(0, addr: TestQueue.data, len: 16, flags: NEXT, next: 2, table: 0x5000)
        q.descriptor(2, addr: TestQueue.data + 16, len: 100, flags: NEXT | WRITE, next: 1, table: 0x5000)
        q.descriptor(1, addr: TestQueue.data + 200, len: 1, flags: WRITE, table: 0x5000)
        q.offer(5)
        let (r, chain) = q.pop()
        #expect(r == 1 && chain.head == 5 && chain.count == 3 && chain.readable == 16 && chain.writable == 101)
    }

    @Test("rings outside RAM or misaligned are refused at setup")
    func badRings() throws {
        let q = try TestQueue()
        var queue = vmm_virtq()
        #expect(vmm_virtq_init(&queue, q.mem, 8, UInt64(TestQueue.ramSize), TestQueue.avail, TestQueue.used, false) == -EFAULT)
        #expect(vmm_virtq_init(&queue, q.mem, 8, TestQueue.desc + 8, TestQueue.avail, TestQueue.used, false) == -EINVAL)
        #expect(vmm_virtq_init(&queue, q.mem, 6, TestQueue.desc, TestQueue.avail, TestQueue.used, false) == -EINVAL)
        #expect(vmm_virtq_init(&queue, q.mem, 2048, TestQueue.desc, TestQueue.avail, TestQueue.used, false) == -EINVAL)
    }

    @Test("event idx: an interrupt only when the driver's used_event is crossed; rearm publishes avail_event")
    func eventIdx() throws {
        let q = try TestQueue(eventIdx: true)
        for head in 0..<3 {
            q.descriptor(head, addr: TestQueue.data, len: 8, flags: WRITE)
            q.offer(UInt16(head))
        }
        let usedEvent = TestQueue.avail + 4 + 2 * 8
        q.put(UInt16(1), at: usedEvent) // interrupt once used idx passes 1
        _ = q.pop()
        vmm_virtq_push(&q.queue, 0, 0)
        #expect(vmm_virtq_should_signal(&q.queue), "the first signal is always sent")
        _ = q.pop()
        vmm_virtq_push(&q.queue, 1, 0)
        #expect(vmm_virtq_should_signal(&q.queue), "used idx went 1 -> 2, past used_event 1")
        _ = q.pop()
        vmm_virtq_push(&q.queue, 2, 0)
        #expect(!vmm_virtq_should_signal(&q.queue), "used_event 1 was already passed")

        #expect(!vmm_virtq_rearm(&q.queue), "nothing new offered")
        #expect(q.get(UInt16.self, at: TestQueue.used + 4 + 8 * 8) == 3, "avail_event = next entry to take")
        q.descriptor(3, addr: TestQueue.data, len: 8, flags: WRITE)
        q.offer(3)
        #expect(vmm_virtq_rearm(&q.queue), "a buffer arrived: process again instead of sleeping")
    }

    @Test("chain data is gathered and scattered across buffer boundaries")
    func copies() throws {
        let q = try TestQueue()
        q.descriptor(0, addr: TestQueue.data, len: 3, flags: NEXT, next: 1)
        q.descriptor(1, addr: TestQueue.data + 0x10, len: 5, flags: NEXT, next: 2)
        q.descriptor(2, addr: TestQueue.data + 0x20, len: 4, flags: WRITE, next: 0)
        for (i, byte) in Array("abcdefgh".utf8).enumerated() {
            q.put(byte, at: (i < 3 ? TestQueue.data + UInt64(i) : TestQueue.data + 0x10 + UInt64(i - 3)))
        }
        q.offer(0)
        var (r, chain) = q.pop()
        #expect(r == 1)
        var out = [UInt8](repeating: 0, count: 6)
        #expect(vmm_virtq_read(&chain, 1, &out, 6) == 6)
        #expect(String(decoding: out, as: UTF8.self) == "bcdefg")
        #expect(vmm_virtq_write(&chain, 2, "XYZ", 3) == 2, "only 2 bytes fit after offset 2")
        var iov = [iovec](repeating: iovec(), count: 4)
        #expect(vmm_virtq_iov(&chain, false, 2, 4, &iov, 4) == 2)
        #expect(vmm_virtq_iov(&chain, false, 0, 9, &iov, 4) == -ERANGE)
        #expect(vmm_virtq_iov(&chain, false, 0, 8, &iov, 1) == -E2BIG)
    }
}
