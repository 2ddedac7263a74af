/* Streams the guest resets before their host client has read them, over
 * and over (VsockTests.resetChurn). Each goes to the host's
 * "<socket>_5003" and is sent 256 KiB, more than the client's socket
 * holds, then reset: the device keeps the rest for the client, so each
 * such stream holds a slot, a descriptor and its buffer until the client
 * reads or goes. Two rounds, each until the device refuses a stream (its
 * limit); before each new round the host test closes its clients and the
 * guest retries until a stream is accepted again, then waits for the
 * host's go on it (a byte), so the test can count the VMM's descriptors
 * between rounds. Prints what each round got; the test watches the VMM's
 * descriptors and memory. */
#include "vsock_guest.h"

#define PORT 5003u
#define CHUNK 65536u /* the largest packet Linux sends */
#define DATA (256u * 1024u)
#define MAX_STREAMS 2000u
#define RETRIES 100000u

static uint32_t next_port = 2000;

/* Opens a stream from a new port: 1 if the device took it, 0 if it
 * answered with a reset, -1 for no answer. Credit updates for streams
 * before it are passed over. */
static int open_stream(uint32_t *port)
{
    *port = next_port++;
    send(OP_REQUEST, *port, PORT, 0, 0, 0);
    struct hdr h;
    while (receive(&h, 0)) {
        if (h.dst_port == *port && h.op == OP_RESPONSE)
            return 1;
        if (h.dst_port == *port && h.op == OP_RST)
            return 0;
    }
    return -1;
}

static void fill_and_reset(uint32_t port)
{
    for (unsigned k = 0; k < DATA / CHUNK; k++)
        send(OP_RW, port, PORT, 0, 0, CHUNK);
    send(OP_RST, port, PORT, 0, 0, 0);
}

/* Waits for the host to close the clients of the last round: retries
 * until a stream is accepted, which it returns. */
static int reopen(uint32_t *port)
{
    for (unsigned i = 0; i < RETRIES; i++) {
        int r = open_stream(port);
        if (r != 0)
            return r;
        for (int spin = 0; spin < 20000; spin++)
            __asm__ volatile("pause");
    }
    return -1;
}

/* Waits for the host's go: data on the round's first stream. */
static int await_go(uint32_t port)
{
    struct hdr h;
    while (receive(&h, 0))
        if (h.dst_port == port && h.op == OP_RW)
            return 1;
    return 0;
}

/* Streams until one is refused, the first (already open) included. */
static unsigned run_round(uint32_t first)
{
    unsigned accepted = 1;
    fill_and_reset(first);
    for (unsigned i = 1; i < MAX_STREAMS; i++) {
        uint32_t port;
        int r = open_stream(&port);
        if (r <= 0)
            break;
        accepted++;
        fill_and_reset(port);
    }
    return accepted;
}

void guest_main(void)
{
    if (vsock_start() < 0)
        return;
    for (uint32_t i = 0; i < CHUNK; i++)
        R8(TXDATA + i) = (uint8_t)(i * 7);
    print("vsock reset start\n");
    for (int round = 1; round <= 2; round++) {
        uint32_t first;
        if ((round == 1 ? open_stream(&first) : reopen(&first)) != 1 || !await_go(first)) {
            print("vsock: no stream accepted\n");
            return;
        }
        unsigned accepted = run_round(first);
        print(round == 1 ? "round 1: " : "round 2: "); print_hex(accepted); print(" accepted\n");
    }
    uint32_t last;
    if (reopen(&last) != 1) {
        print("vsock: no stream accepted at the end\n");
        return;
    }
    send(OP_RST, last, PORT, 0, 0, 0);
    virtio_reset(bar);
    print("vsock reset done\n");
}
