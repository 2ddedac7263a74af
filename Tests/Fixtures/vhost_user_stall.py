#!/usr/bin/env python3
"""A vhost-user-fs backend that answers late once (VhostUserTests).

Listens on SOCKET, greets as a backend offering VIRTIO_F_VERSION_1 and
REPLY_ACK, then holds its answer to the first SET_FEATURES for STALL
seconds before sending it; every other request is answered at once.
Prints each request's number as it comes, and "late answer sent", so
the test sees what the frontend asked after the stall.

    vhost_user_stall.py SOCKET STALL
"""
import os
import socket
import struct
import sys
import time

GET_FEATURES, SET_FEATURES, GET_PROTOCOL_FEATURES, GET_VRING_BASE, GET_QUEUE_NUM = 1, 2, 15, 11, 17
REPLY, NEED_REPLY = 0x4, 0x8
FEATURES = 1 << 32 | 1 << 30  # VIRTIO_F_VERSION_1, VHOST_USER_F_PROTOCOL_FEATURES
PROTOCOL = 1 << 3             # REPLY_ACK


def read_exact(conn, n):
    data = b""
    while len(data) < n:
        chunk, ancillary, _, _ = conn.recvmsg(n - len(data), socket.CMSG_SPACE(8 * 4))
        for level, kind, fds in ancillary:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                for fd in struct.unpack(f"{len(fds) // 4}i", fds[:len(fds) // 4 * 4]):
                    os.close(fd)
        if not chunk:
            return None
        data += chunk
    return data


def answer(conn, request, payload):
    conn.sendall(struct.pack("<III", request, 0x1 | REPLY, len(payload)) + payload)


def main():
    path, stall = sys.argv[1], float(sys.argv[2])
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(1)
    conn, _ = listener.accept()
    stalled = False
    while True:
        header = read_exact(conn, 12)
        if header is None:
            return
        request, flags, size = struct.unpack("<III", header)
        payload = read_exact(conn, size) if size else b""
        print(f"request {request}", flush=True)
        if request == GET_FEATURES:
            answer(conn, request, struct.pack("<Q", FEATURES))
        elif request == GET_PROTOCOL_FEATURES:
            answer(conn, request, struct.pack("<Q", PROTOCOL))
        elif request == GET_QUEUE_NUM:
            answer(conn, request, struct.pack("<Q", 2))
        elif request == GET_VRING_BASE:
            answer(conn, request, payload[:4] + struct.pack("<I", 0))
        elif flags & NEED_REPLY:
            if request == SET_FEATURES and not stalled:
                stalled = True
                time.sleep(stall)
                answer(conn, request, struct.pack("<Q", 0))
                print("late answer sent", flush=True)
            else:
                answer(conn, request, struct.pack("<Q", 0))


if __name__ == "__main__":
    main()
