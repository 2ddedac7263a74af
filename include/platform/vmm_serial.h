/* A 16550A UART as Linux's 8250 driver expects it. */
#ifndef VMM_SERIAL_H
#define VMM_SERIAL_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>
#include "irq/vmm_irq.h"

struct vmm_serial;

/* Transmitted bytes go to `out_fd` (-1 discards them); `irq` may be NULL
 * for a UART with no interrupt line. The device does not own `out_fd`. */
int vmm_serial_create(int out_fd, const struct vmm_irq *irq, struct vmm_serial **out);
void vmm_serial_destroy(struct vmm_serial *s);

/* Bus handler; `opaque` is the struct vmm_serial. */
void vmm_serial_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t size,
                   bool is_write);

/* Queues input for the guest; returns how many bytes fitted in the FIFO. */
size_t vmm_serial_receive(struct vmm_serial *s, const uint8_t *buf, size_t len);

/* Snapshot: the registers and what waits in the receive FIFO. */
#define VMM_SERIAL_STATE_VERSION 1
struct vmm_serial_state {
    uint8_t ier, lcr, mcr, scr, fcr, dll, dlm, thre_pending;
    uint8_t rx[64];
    uint32_t rx_head, rx_count;
};
void vmm_serial_save(struct vmm_serial *s, struct vmm_serial_state *out);
/* -EINVAL for a state no UART could be in. */
int vmm_serial_restore(struct vmm_serial *s, const struct vmm_serial_state *state);

#endif
