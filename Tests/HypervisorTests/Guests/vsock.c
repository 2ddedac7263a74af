/* A virtio-vsock driver just large enough to exercise the device's
 * protocol with the host test (VsockTests): a stream to the host's
 * "<socket>_5000" with data and a shutdown, a refused port, a packet for
 * a stream that does not exist, a stream reset before its slow client
 * has read it, then a stream the host opens with
 * "CONNECT 1024" into a small receive buffer (credit runs out, the device
 * asks for more, the rest comes), an answer back, and the host's close.
 * Prints what it saw; the test reads the lines. */
#include "vsock_guest.h"

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
    if (vsock_start() < 0)
        return;
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
