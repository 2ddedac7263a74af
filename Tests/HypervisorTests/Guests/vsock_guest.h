/* The driver's side of the virtio-vsock that the vsock test guests
 * (vsock.c, vsock_reset.c) share: the queues, a packet to the device and
 * the next one from it. */
#ifndef VSOCK_GUEST_H
#define VSOCK_GUEST_H

#include "pci_guest.h"

enum { RX = 0, TX = 1, EVENT = 2, QUEUES = 3, QSIZE_N = 8 };
#define DESCS(q) VQ_DESCS(q)
#define AVAIL(q) VQ_AVAIL(q)
#define USED(q) VQ_USED(q)
#define RXBUF(i) (0x300000u + 0x2000u * (i))
#define RXLEN (44u + 4096u)
#define TXBUF 0x400000u
#define TXDATA (TXBUF + 44u)
#define GUEST_CID 42u

enum { OP_REQUEST = 1, OP_RESPONSE = 2, OP_RST = 3, OP_SHUTDOWN = 4, OP_RW = 5, OP_CREDIT_UPDATE = 6, OP_CREDIT_REQUEST = 7 };

struct hdr {
    uint32_t src_cid_lo, src_cid_hi, dst_cid_lo, dst_cid_hi;
    uint32_t src_port, dst_port, len;
    uint16_t type, op;
    uint32_t flags, buf_alloc, fwd_cnt;
} __attribute__((packed));

static uint16_t avail_idx[QUEUES], used_seen[QUEUES];
static uint32_t bar = 0xc0000000u;
static uint32_t buf_alloc = 65536, fwd_cnt;

static void publish(unsigned q, unsigned head)
{
    R16(AVAIL(q) + 4 + 2 * (avail_idx[q] % QSIZE_N)) = (uint16_t)head;
    avail_idx[q]++;
    R16(AVAIL(q) + 2) = avail_idx[q];
    R16(bar + NOTIFY + NOTIFY_MULTIPLIER * q) = (uint16_t)q;
}

/* The device found and started, its receive queue filled; prints why not. */
static int vsock_start(void)
{
    if (!virtio_map(0x10531af4, bar)) {
        print("vsock: no virtio-vsock\n");
        return -1;
    }
    if (virtio_start_queues(bar, 0, QUEUES, QSIZE_N) < 0) {
        print("vsock: FEATURES_OK refused\n");
        return -1;
    }
    for (unsigned i = 0; i < QSIZE_N; i++) {
        desc_at(DESCS(RX), i, RXBUF(i), RXLEN, 2, 0);
        publish(RX, i);
    }
    return 0;
}

/* Sends one packet and waits for the device to take it: the header, then
 * `len` bytes copied from `data`, or (no `data`) what TXDATA holds. */
static void send(uint16_t op, uint32_t src_port, uint32_t dst_port, uint32_t flags, const char *data, uint32_t len)
{
    struct hdr *h = (struct hdr *)TXBUF;
    *h = (struct hdr){ .src_cid_lo = GUEST_CID, .dst_cid_lo = 2, .src_port = src_port, .dst_port = dst_port,
                       .len = len, .type = 1, .op = op, .flags = flags, .buf_alloc = buf_alloc, .fwd_cnt = fwd_cnt };
    for (uint32_t i = 0; data && i < len; i++)
        R8(TXDATA + i) = (uint8_t)data[i];
    desc_at(DESCS(TX), 0, TXBUF, 44 + len, 0, 0);
    publish(TX, 0);
    for (int i = 0; i < 50000000 && R16(USED(TX) + 2) != avail_idx[TX]; i++)
        __asm__ volatile("pause");
}

/* The next packet from the device: its header copied to `out`, its data
 * summed into `sum`; the buffer goes back to the device. 0 on timeout. */
static int receive(struct hdr *out, uint32_t *sum)
{
    int i;
    for (i = 0; i < 400000000 && R16(USED(RX) + 2) == used_seen[RX]; i++)
        __asm__ volatile("pause");
    if (R16(USED(RX) + 2) == used_seen[RX])
        return 0;
    unsigned slot = used_seen[RX]++ % QSIZE_N;
    unsigned head = R32(USED(RX) + 4 + 8 * slot);
    *out = *(struct hdr *)RXBUF(head);
    for (uint32_t b = 0; sum && b < out->len && b < 4096; b++)
        *sum += R8(RXBUF(head) + 44 + b);
    publish(RX, head);
    return 1;
}

#endif
