import CVMMCore
import Foundation
import Testing

@Suite("16550A UART")
struct SerialTests {
    final class UART {
        let pointer: OpaquePointer
        let pipe = Pipe()
        init(output: Bool = true) {
            var uart: OpaquePointer?
            precondition(vmm_serial_create(output ? pipe.fileHandleForWriting.fileDescriptor : -1, nil, &uart) == 0)
            pointer = uart!
        }
        deinit { vmm_serial_destroy(pointer) }

        func read(_ reg: UInt64) -> UInt8 {
            var byte: UInt8 = 0
            vmm_serial_io(UnsafeMutableRawPointer(pointer), reg, &byte, 1, false)
            return byte
        }
        func write(_ reg: UInt64, _ value: UInt8) {
            var byte = value
            vmm_serial_io(UnsafeMutableRawPointer(pointer), reg, &byte, 1, true)
        }
        func output() -> String {
            try? pipe.fileHandleForWriting.close()
            return String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        }
    }

    @Test("THR bytes reach the output and the transmitter is always ready")
    func transmit() {
        let uart = UART()
        #expect(uart.read(5) & 0x60 == 0x60, "LSR: THRE and TEMT")
        for byte in "hi\n".utf8 { uart.write(0, byte) }
        #expect(uart.output() == "hi\n")
    }

    @Test("the divisor latch hides THR and IER while DLAB is set")
    func divisorLatch() {
        let uart = UART()
        uart.write(3, 0x83)
        uart.write(0, 0x01)
        uart.write(1, 0x00)
        #expect(uart.read(0) == 0x01)
        uart.write(3, 0x03)
        #expect(uart.read(1) == 0, "IER untouched by the DLM write")
        #expect(uart.output() == "", "the DLL write was not transmitted")
    }

    @Test("Linux's probes: scratch register, FIFO bits in IIR, loopback modem lines")
    func linuxProbes() {
        let uart = UART()
        uart.write(7, 0xa5)
        #expect(uart.read(7) == 0xa5)
        uart.write(2, 0x01)
        #expect(uart.read(2) & 0xc0 == 0xc0, "16550A FIFO")
        uart.write(4, 0x1a) // loopback + OUT2 + RTS
        #expect(uart.read(6) & 0xf0 == 0x90, "CTS and DCD follow RTS and OUT2")
        uart.write(0, 0x42)
        #expect(uart.read(5) & 0x01 == 1, "looped-back byte is ready")
        #expect(uart.read(0) == 0x42)
        uart.write(4, 0x08)
        #expect(uart.read(6) == 0xb0, "out of loopback: DCD, DSR, CTS")
        #expect(uart.output() == "", "loopback bytes never leave")
    }

    @Test("THRE interrupt is pending once enabled and cleared by reading IIR; RX data wins")
    func interruptIdentification() {
        let uart = UART(output: false)
        #expect(uart.read(2) & 0x0f == 0x01, "none pending")
        uart.write(1, 0x02)
        #expect(uart.read(2) & 0x0f == 0x02)
        #expect(uart.read(2) & 0x0f == 0x01, "read of IIR acknowledged THRE")
        uart.write(1, 0x03)
        let input: [UInt8] = Array("ab".utf8)
        #expect(vmm_serial_receive(uart.pointer, input, 2) == 2)
        #expect(uart.read(2) & 0x0f == 0x04, "received data available")
        #expect(uart.read(0) == UInt8(ascii: "a"))
        #expect(uart.read(0) == UInt8(ascii: "b"))
        #expect(uart.read(5) & 0x01 == 0)
    }

    @Test("the receive FIFO holds 64 bytes and says how many it took")
    func fifoLimit() {
        let uart = UART(output: false)
        let input = [UInt8](repeating: 0x41, count: 100)
        #expect(vmm_serial_receive(uart.pointer, input, 100) == 64)
        #expect(vmm_serial_receive(uart.pointer, input, 1) == 0)
    }
}
