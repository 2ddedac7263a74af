/* libFuzzer target: the 16550A's register interface as a guest drives it,
 * interleaved with host input. Input: records of 3 bytes — register
 * (offset 0-7, or 8+: host input of that many bytes), value, flags (bit 0:
 * write, else read). The UART writes to /dev/null and has no IRQ line. */
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>

#include "platform/vmm_serial.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int out = -2;
    if (out == -2)
        out = open("/dev/null", O_WRONLY);
    struct vmm_serial *uart;
    if (vmm_serial_create(out, NULL, &uart) < 0)
        return 0;
    for (size_t at = 0; at + 3 <= size; at += 3) {
        uint8_t reg = data[at], value = data[at + 1];
        bool write = data[at + 2] & 1;
        if (reg >= 8) {
            uint8_t input[64];
            for (unsigned i = 0; i < sizeof(input); i++)
                input[i] = value + (uint8_t)i;
            if (vmm_serial_receive(uart, input, reg % sizeof(input)) > reg % sizeof(input))
                abort();
            continue;
        }
        uint8_t byte = value;
        vmm_serial_io(uart, reg, &byte, 1, write);
    }
    vmm_serial_destroy(uart);
    return 0;
}
