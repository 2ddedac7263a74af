/* Private: one stream of the virtio-vsock device (virtio_vsock.c) and its
 * host side, a UNIX stream socket (vsock_host.c). Device thread only. */
#ifndef CVMM_VSOCK_CONN_H
#define CVMM_VSOCK_CONN_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#define VSOCK_HOST_CID 2
/* What the guest may send a stream before the host reads it: the
 * buf_alloc the device announces, and the most it ever holds for one. */
#define VSOCK_CONN_BUF (256u * 1024)
/* A credit update once the host has taken this much since the last one:
 * a sender blocked on credit always gets one as the buffer drains. */
#define VSOCK_CREDIT_THRESHOLD (VSOCK_CONN_BUF / 2)
/* Cloud Hypervisor's and Firecracker's limit. */
#define VSOCK_MAX_CONNS 1023
/* "CONNECT 4294967295\n" with room for spaces. */
#define VSOCK_LINE_MAX 32

enum vsock_conn_state {
    CONN_AWAIT_LINE,  /* a host client connected; its "CONNECT <port>\n" not read yet */
    CONN_LOCAL_INIT,  /* REQUEST owed or sent to the guest, no answer yet */
    CONN_ESTABLISHED,
};

/* Control packets owed to the guest, sent in this order of priority. */
enum {
    SEND_RST = 1u << 0,
    SEND_REQUEST = 1u << 1,
    SEND_RESPONSE = 1u << 2,
    SEND_SHUTDOWN = 1u << 3,
    SEND_CREDIT_REQUEST = 1u << 4,
    SEND_CREDIT = 1u << 5,
};

struct vsock_conn {
    int fd; /* the host stream; -1 once closed (an RST still owed) */
    enum vsock_conn_state state;
    uint32_t local_port; /* the host's side (CID 2) */
    uint32_t peer_port;  /* the guest's side */
    unsigned send;       /* SEND_* */
    uint32_t shutdown_flags;
    bool request_sent;
    bool readable;       /* the host fd has data or EOF not taken yet */
    bool host_hup;       /* the host client closed both ways */
    bool host_eof;       /* its read side ended (told to the guest) */
    bool peer_no_send, peer_no_recv; /* the guest's SHUTDOWN flags */
    bool write_shut;     /* shutdown(SHUT_WR) done after the guest's SEND shutdown */
    bool credit_requested;
    bool peer_reset;     /* the guest reset it: what it sent goes to the client, then the socket closes */
    uint32_t watched;    /* the epoll events now asked for */
    /* Credit (virtio 1.2 §5.10.6.3): the guest's buffer, what was sent
     * into it, and what the host took of the guest's data. */
    uint32_t peer_buf_alloc, peer_fwd_cnt, rx_cnt;
    uint32_t fwd_cnt, fwd_cnt_told;
    /* Guest data the host socket could not take yet: a ring of
     * VSOCK_CONN_BUF bytes, allocated while it holds any. */
    uint8_t *txbuf;
    uint32_t tx_start, tx_len;
    char line[VSOCK_LINE_MAX];
    unsigned line_len;
    uint64_t deadline_ms; /* CONN_LOCAL_INIT: when the guest's answer is late; peer_reset: when an unread client is given up */
};

/* vsock_host.c: the host side of a stream. */

/* Reads what the client sent of its CONNECT line: 1 and the port once
 * complete, 0 for more to come, -1 for a closed or malformed request. */
int vsock_host_read_line(struct vsock_conn *c, uint32_t *port);
/* Connects to "<path>_<port>": the fd, or -1 (errno set). */
int vsock_host_connect(const char *path, uint32_t port);
/* Tells the client its stream is up: "OK <local port>\n". */
int vsock_host_send_ok(struct vsock_conn *c);
/* Sends guest data to the host: straight through while nothing waits,
 * the rest into the connection's ring. Returns 0, -ENOBUFS when the
 * guest sent more than its credit, or another -errno (the host is gone). */
int vsock_host_forward(struct vsock_conn *c, const struct iovec *iov, int iovcnt, uint32_t len);
/* Sends what the ring holds; 0 or -errno. Frees the ring once empty. */
int vsock_host_drain(struct vsock_conn *c);
/* The epoll events the connection needs now. */
uint32_t vsock_host_events(const struct vsock_conn *c);
void vsock_conn_free(struct vsock_conn *c);

#endif
