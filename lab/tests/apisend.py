#!/usr/bin/env python3
"""Sends one PUT to the VMM's API socket with a descriptor attached
(SCM_RIGHTS), as Kata Containers sends a tap to vm.add-net, and prints
the answer as api.sh does: "ENDPOINT: BODY HTTP=STATUS".

Usage: apisend.py SOCKET ENDPOINT BODY FD
"""
import array
import socket
import sys

path, endpoint, body, fd = sys.argv[1], sys.argv[2], sys.argv[3].encode(), int(sys.argv[4])
request = (f"PUT /api/v1/{endpoint} HTTP/1.1\r\nHost: localhost\r\n"
           f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body
with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
    s.settimeout(30)
    s.connect(path)
    s.sendmsg([request], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [fd]))])
    answer = b""
    while b"\r\n\r\n" not in answer:
        chunk = s.recv(65536)
        if not chunk:
            break
        answer += chunk
    head, _, rest = answer.partition(b"\r\n\r\n")
    status = head.split(b" ")[1].decode() if head else "000"
    length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                   if line.lower().startswith(b"content-length:")), 0)
    while len(rest) < length:
        chunk = s.recv(65536)
        if not chunk:
            break
        rest += chunk
print(f"{endpoint}: {rest.decode()} HTTP={status}")
