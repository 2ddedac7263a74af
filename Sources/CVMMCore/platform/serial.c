/* A 16550A UART (the PC's COM ports), enough for Linux's 8250 driver:
 * divisor latch, FIFO detection, loopback probe, THRE and RX interrupts.
 * Transmission is instant: THR is always empty again after a write. */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "platform/vmm_serial.h"

enum {
    REG_DATA = 0, /* RBR / THR, or DLL with DLAB */
    REG_IER = 1,  /* or DLM with DLAB */
    REG_IIR = 2,  /* FCR on write */
    REG_LCR = 3,
    REG_MCR = 4,
    REG_LSR = 5,
    REG_MSR = 6,
    REG_SCR = 7,
};

#define IER_RDA   0x01
#define IER_THRE  0x02
#define IER_MASK  0x0f

#define IIR_NONE  0x01
#define IIR_THRE  0x02
#define IIR_RDA   0x04
#define IIR_FIFO  0xc0

#define FCR_ENABLE   0x01
#define FCR_CLEAR_RX 0x02

#define LCR_DLAB  0x80

#define MCR_DTR   0x01
#define MCR_RTS   0x02
#define MCR_OUT1  0x04
#define MCR_OUT2  0x08
#define MCR_LOOP  0x10
#define MCR_MASK  0x1f

#define LSR_DR    0x01
#define LSR_THRE  0x20
#define LSR_TEMT  0x40

#define MSR_CTS   0x10
#define MSR_DSR   0x20
#define MSR_RI    0x40
#define MSR_DCD   0x80

#define RX_FIFO_SIZE 64

struct vmm_serial {
    pthread_mutex_t lock;
    int out_fd;
    const struct vmm_irq *irq;
    uint8_t ier, lcr, mcr, scr, fcr;
    uint8_t dll, dlm;
    bool thre_pending;
    uint8_t rx[RX_FIFO_SIZE];
    unsigned rx_head, rx_count;
};

int vmm_serial_create(int out_fd, const struct vmm_irq *irq, struct vmm_serial **out)
{
    struct vmm_serial *s = calloc(1, sizeof(*s));
    if (!s)
        return -ENOMEM;
    pthread_mutex_init(&s->lock, NULL);
    s->out_fd = out_fd;
    s->irq = irq;
    s->lcr = 0x03; /* 8N1 */
    s->mcr = MCR_OUT2;
    s->dll = 0x0c; /* 9600 baud */
    *out = s;
    return 0;
}

void vmm_serial_destroy(struct vmm_serial *s)
{
    if (!s)
        return;
    pthread_mutex_destroy(&s->lock);
    free(s);
}

_Static_assert(sizeof(struct vmm_serial_state) == 80, "serial state layout changed: bump VMM_SERIAL_STATE_VERSION");
_Static_assert(sizeof(((struct vmm_serial_state *)0)->rx) == RX_FIFO_SIZE, "the FIFO is the state's");

void vmm_serial_save(struct vmm_serial *s, struct vmm_serial_state *out)
{
    pthread_mutex_lock(&s->lock);
    *out = (struct vmm_serial_state){ .ier = s->ier, .lcr = s->lcr, .mcr = s->mcr, .scr = s->scr, .fcr = s->fcr,
                                      .dll = s->dll, .dlm = s->dlm, .thre_pending = s->thre_pending,
                                      .rx_head = s->rx_head, .rx_count = s->rx_count };
    memcpy(out->rx, s->rx, sizeof(out->rx));
    pthread_mutex_unlock(&s->lock);
}

int vmm_serial_restore(struct vmm_serial *s, const struct vmm_serial_state *in)
{
    if (in->rx_head >= RX_FIFO_SIZE || in->rx_count > RX_FIFO_SIZE)
        return -EINVAL;
    pthread_mutex_lock(&s->lock);
    s->ier = in->ier & IER_MASK;
    s->lcr = in->lcr;
    s->mcr = in->mcr & MCR_MASK;
    s->scr = in->scr;
    s->fcr = in->fcr;
    s->dll = in->dll;
    s->dlm = in->dlm;
    s->thre_pending = in->thre_pending;
    memcpy(s->rx, in->rx, sizeof(s->rx));
    s->rx_head = in->rx_head;
    s->rx_count = in->rx_count;
    pthread_mutex_unlock(&s->lock);
    return 0;
}

static bool rda_pending(const struct vmm_serial *s)
{
    return (s->ier & IER_RDA) && s->rx_count > 0;
}

static uint8_t iir(const struct vmm_serial *s)
{
    uint8_t fifo = (s->fcr & FCR_ENABLE) ? IIR_FIFO : 0;
    if (rda_pending(s))
        return IIR_RDA | fifo;
    if ((s->ier & IER_THRE) && s->thre_pending)
        return IIR_THRE | fifo;
    return IIR_NONE | fifo;
}

/* Edge-triggered ISA line: pulse when a new interrupt condition appears. */
static void raise_irq(struct vmm_serial *s)
{
    if (s->irq && (s->mcr & MCR_OUT2) && !(s->mcr & MCR_LOOP))
        vmm_irq_trigger(s->irq);
}

static void rx_push(struct vmm_serial *s, uint8_t byte)
{
    if (s->rx_count == RX_FIFO_SIZE)
        return; /* overrun: the byte is lost, as on hardware */
    s->rx[(s->rx_head + s->rx_count) % RX_FIFO_SIZE] = byte;
    s->rx_count++;
}

static uint8_t rx_pop(struct vmm_serial *s)
{
    if (s->rx_count == 0)
        return 0;
    uint8_t byte = s->rx[s->rx_head];
    s->rx_head = (s->rx_head + 1) % RX_FIFO_SIZE;
    s->rx_count--;
    return byte;
}

static void transmit(struct vmm_serial *s, uint8_t byte)
{
    if (s->mcr & MCR_LOOP) {
        rx_push(s, byte);
    } else if (s->out_fd >= 0) {
        /* A failed console write must not stop the guest: the byte is dropped. */
        while (write(s->out_fd, &byte, 1) < 0 && errno == EINTR)
            ;
    }
    s->thre_pending = true;
    if (s->ier & IER_THRE)
        raise_irq(s);
}

static uint8_t msr(const struct vmm_serial *s)
{
    if (!(s->mcr & MCR_LOOP))
        return MSR_DCD | MSR_DSR | MSR_CTS;
    /* Loopback wires the modem outputs back to the inputs (Linux probes this). */
    uint8_t v = 0;
    if (s->mcr & MCR_RTS)
        v |= MSR_CTS;
    if (s->mcr & MCR_DTR)
        v |= MSR_DSR;
    if (s->mcr & MCR_OUT1)
        v |= MSR_RI;
    if (s->mcr & MCR_OUT2)
        v |= MSR_DCD;
    return v;
}

static uint8_t serial_read(struct vmm_serial *s, unsigned reg)
{
    bool dlab = s->lcr & LCR_DLAB;
    switch (reg) {
    case REG_DATA:
        return dlab ? s->dll : rx_pop(s);
    case REG_IER:
        return dlab ? s->dlm : s->ier;
    case REG_IIR: {
        uint8_t v = iir(s);
        /* Reading IIR acknowledges a THRE interrupt. */
        if ((v & 0x0f) == IIR_THRE)
            s->thre_pending = false;
        return v;
    }
    case REG_LCR:
        return s->lcr;
    case REG_MCR:
        return s->mcr;
    case REG_LSR:
        return LSR_THRE | LSR_TEMT | (s->rx_count ? LSR_DR : 0);
    case REG_MSR:
        return msr(s);
    default:
        return s->scr;
    }
}

static void serial_write(struct vmm_serial *s, unsigned reg, uint8_t v)
{
    bool dlab = s->lcr & LCR_DLAB;
    switch (reg) {
    case REG_DATA:
        if (dlab)
            s->dll = v;
        else
            transmit(s, v);
        break;
    case REG_IER:
        if (dlab) {
            s->dlm = v;
        } else {
            uint8_t was = s->ier;
            s->ier = v & IER_MASK;
            /* Enabling THRE with an empty THR raises it at once. */
            if ((s->ier & IER_THRE) && !(was & IER_THRE)) {
                s->thre_pending = true;
                raise_irq(s);
            }
            if (rda_pending(s) && !(was & IER_RDA))
                raise_irq(s);
        }
        break;
    case REG_IIR:
        s->fcr = v;
        if (v & FCR_CLEAR_RX)
            s->rx_head = s->rx_count = 0;
        break;
    case REG_LCR:
        s->lcr = v;
        break;
    case REG_MCR:
        s->mcr = v & MCR_MASK;
        break;
    case REG_SCR:
        s->scr = v;
        break;
    default:
        break; /* LSR and MSR are read-only */
    }
}

void vmm_serial_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t size,
                   bool is_write)
{
    struct vmm_serial *s = opaque;
    pthread_mutex_lock(&s->lock);
    /* Registers are bytes; a wider access touches consecutive registers. */
    for (uint32_t i = 0; i < size; i++) {
        unsigned reg = (unsigned)(offset + i) & 7;
        if (is_write)
            serial_write(s, reg, data[i]);
        else
            data[i] = serial_read(s, reg);
    }
    pthread_mutex_unlock(&s->lock);
}

size_t vmm_serial_receive(struct vmm_serial *s, const uint8_t *buf, size_t len)
{
    pthread_mutex_lock(&s->lock);
    bool was_empty = s->rx_count == 0;
    size_t n = 0;
    while (n < len && s->rx_count < RX_FIFO_SIZE)
        rx_push(s, buf[n++]);
    if (n && was_empty && (s->ier & IER_RDA))
        raise_irq(s);
    pthread_mutex_unlock(&s->lock);
    return n;
}
