#!/usr/bin/env python3
"""Hot-adds and removes one assigned device COUNT times through the API,
one HTTP connection for all of it, while a tiny guest acknowledges each
arrival and ejects each slot it is asked for (Tests/.../Guests/hotplug.S).
Prints "cycles: DONE of COUNT, VmRSS A kB then B kB, fds C then D" and the
first failure, if any.

    cycles.py SOCKET VMM_PID BDF COUNT
"""
import http.client
import json
import os
import socket
import sys
import time


class UnixConnection(http.client.HTTPConnection):
    def __init__(self, path):
        super().__init__("localhost", timeout=30)
        self.path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(30)
        self.sock.connect(self.path)


def footprint(pid):
    rss = next(int(line.split()[1]) for line in open(f"/proc/{pid}/status") if line.startswith("VmRSS:"))
    return rss, len(os.listdir(f"/proc/{pid}/fd"))


def main():
    path, pid, bdf, count = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
    api = UnixConnection(path)

    def call(method, endpoint, body=None):
        api.request(method, f"/api/v1/{endpoint}", body=json.dumps(body) if body is not None else None,
                    headers={"Content-Type": "application/json"} if body is not None else {})
        answer = api.getresponse()
        return answer.status, answer.read().decode()

    def present():
        return '"cycle":{' in call("GET", "vm.info")[1]

    before = None
    done, failure = 0, ""
    for cycle in range(count):
        status, body = call("PUT", "vm.add-device", {"path": f"/sys/bus/pci/devices/{bdf}/", "id": "cycle"})
        if status != 200:
            failure = f"cycle {cycle}: vm.add-device answered {status} {body}"
            break
        status, body = call("PUT", "vm.remove-device", {"id": "cycle"})
        if status != 204:
            failure = f"cycle {cycle}: vm.remove-device answered {status} {body}"
            break
        deadline = time.monotonic() + 10
        while present() and time.monotonic() < deadline:
            time.sleep(0.005)
        if present():
            failure = f"cycle {cycle}: the device was not gone 10 s after its removal"
            break
        done += 1
        # The first cycles warm the allocator and the C library's caches up.
        if cycle == 9:
            before = footprint(pid)
    after = footprint(pid)
    before = before or after
    print(f"cycles: {done} of {count}, VmRSS {before[0]} kB then {after[0]} kB, fds {before[1]} then {after[1]}")
    if failure:
        print(f"cycles: {failure}")


if __name__ == "__main__":
    main()
