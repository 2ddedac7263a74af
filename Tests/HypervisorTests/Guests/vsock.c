/* A virtio-vsock driver just large enough to exercise the device's
 * protocol with the host test (VsockTests): a stream to the host's
 * "<socket>_5000" with data and a shutdown, a refused port, a packet for
 * a stream that does not exist, a stream reset before its slow client
 * has read it, then a stream the host opens with
 * "CONNECT 1024" into a small receive buffer (credit runs out, the device
 * asks for more, the rest comes), an answer back, and the host's close.
 * Prints what it saw; the test reads the lines. */
#include "pci_guest.h"

enum { RX = 0, TX = 1, EVENT = 2, QUEUES = 3, QSIZE_N = 8 };
#define DESCS(q) VQ_DESCS(q)
#define AVAIL(q) VQ_AVAIL(q)
#define USED(q) VQ_USED(q)
#define RXBUF(i) (0x300000u + 0x2000u * (i))
#define RXLEN (44u + 4096u)
#define TXBUF 0x400000u
#define GUEST_CID 42u

enum { OP_REQUEST = 1, OP_RESPONSE = 2, OP_RST = 3, OP_SHUTDOWN = 4, OP_RW = 5, OP_CREDIT_UPDATE = 6, OP_CREDIT_REQUEST = 7 };

struct hdr {
    uint32_t src_cid_lo, src_cid_hi, dst_cid_lo, dst_cid_hi;
    uint32_t src_port, dst_port, len;
    uint16_t type, op;
    uint32_t flags, buf_alloc, fwd_cnt;
} __attribute__((packed));

static uint16_t avail_idx[QUEUES], used_seen[QUEUES];
static uint32_t bar;
static uint32_t buf_alloc = 65536, fwd_cnt;

static void publish(unsigned q, unsigned head)
{
    R16(AVAIL(q) + 4 + 2 * (avail_idx[q] % QSIZE_N)) = (uint16_t)head;
    avail_idx[q]++;
    R16(AVAIL(q) + 2) = avail_idx[q];
    R16(bar + NOTIFY + NOTIFY_MULTIPLIER * q) = (uint16_t)q;
}

static int start(void)
{
    if (virtio_start_queues(bar, 0, QUEUES, QSIZE_N) < 0)
        return -1;
    for (unsigned i = 0; i < QSIZE_N; i++) {
        desc_at(DESCS(RX), i, RXBUF(i), RXLEN, 2, 0);
        publish(RX, i);
    }
    return 0;
}

/* Sends one packet (header and `len` bytes of `data`) and waits for the device to take it. */
static void send(uint16_t op, uint32_t src_port, uint32_t dst_port, uint32_t flags, const char *data, uint32_t len)
{
    struct hdr *h = (struct hdr *)TXBUF;
    *h = (struct hdr){ .src_cid_lo = GUEST_CID, .dst_cid_lo = 2, .src_port = src_port, .dst_port = dst_port,
                       .len = len, .type = 1, .op = op, .flags = flags, .buf_alloc = buf_alloc, .fwd_cnt = fwd_cnt };
    for (uint32_t i = 0; i < len; i++)
        R8(TXBUF + 44 + i) = (uint8_t)data[i];
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

static void expect(const char *what, uint16_t op)
{
    struct hdr h;
    if (!receive(&h, 0)) {
        print(what); print(": nothing\n");
        return;
    }
    print(what); print(h.op == op ? ": ok op " : ": wrong op "); print_hex(h.op); print("\n");
}

void guest_main(void)
{
    bar = 0xc0000000u;
    if (!virtio_map(0x10531af4, bar)) {
        print("vsock: no virtio-vsock\n");
        return;
    }
    if (start() < 0) {
        print("vsock: FEATURES_OK refused\n");
        return;
    }
    print("cid "); print_hex(R32(bar + DEVICE_CFG)); print("\n");

    /* To the host: port 5000 listens, port 5001 does not. */
    send(OP_REQUEST, 1000, 5000, 0, 0, 0);
    expect("connect 5000", OP_RESPONSE);
    send(OP_RW, 1000, 5000, 0, "hello from guest", 16);
    send(OP_SHUTDOWN, 1000, 5000, 3, 0, 0);
    expect("shutdown 5000", OP_RST);
    send(OP_REQUEST, 1001, 5001, 0, 0, 0);
    expect("connect 5001", OP_RST);
    send(OP_RW, 1002, 7777, 0, "stray", 5);
    expect("unknown stream", OP_RST);
    /* A stream the guest resets while its client has not read what it
     * sent (256 KiB, more than the host socket holds): the client must
     * still get all of it. */
    send(OP_REQUEST, 1003, 5002, 0, 0, 0);
    expect("connect 5002", OP_RESPONSE);
    static char chunk[4096];
    for (unsigned i = 0; i < 64; i++) {
        for (unsigned b = 0; b < sizeof(chunk); b++)
            chunk[b] = (char)(i * 4096 + b) * 13;
        send(OP_RW, 1003, 5002, 0, chunk, sizeof(chunk));
    }
    send(OP_RST, 1003, 5002, 0, 0, 0);
    print("reset 5002 sent\n");

    /* From the host: its CONNECT 1024 arrives as a REQUEST. */
    print("listening\n");
    struct hdr h;
    int heard;
    while ((heard = receive(&h, 0)) && h.dst_port == 1003)
        ; /* credit updates of the stream reset above */
    if (!heard || h.op != OP_REQUEST || h.dst_port != 1024) {
        print("vsock: no request for port 1024\n");
        return;
    }
    uint32_t host_port = h.src_port;
    print(host_port >= (1u << 30) ? "request from a host port\n" : "vsock: odd host port\n");
    buf_alloc = 4096;
    send(OP_RESPONSE, 1024, host_port, 0, 0, 0);
    uint32_t got = 0, sum = 0;
    int asked = 0;
    while (got < 10000) {
        if (!receive(&h, &sum))
            break;
        if (h.op == OP_RW) {
            got += h.len;
        } else if (h.op == OP_CREDIT_REQUEST && !asked) {
            asked = 1;
            print(got == 4096 ? "credit request after 4096 bytes\n" : "vsock: credit request at the wrong point\n");
            fwd_cnt = got;
            buf_alloc = 65536;
            send(OP_CREDIT_UPDATE, 1024, host_port, 0, 0, 0);
        }
    }
    print("received "); print_hex(got); print(" sum "); print_hex(sum); print("\n");
    fwd_cnt = got;
    send(OP_RW, 1024, host_port, 0, "pong", 4);
    if (receive(&h, 0) && h.op == OP_SHUTDOWN) {
        print("host closed: flags "); print_hex(h.flags); print("\n");
    } else {
        print("vsock: no shutdown from the host\n");
    }
    virtio_reset(bar);
    print("vsock done\n");
}
