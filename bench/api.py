#!/usr/bin/env python3
"""The API's round trip: vmm.ping and vm.info on one keep-alive
connection, median and p99, against a baseline measured in the same run:
the same requests answered by a minimal responder on a UNIX socket (one
recv, one send of a canned answer), which is the floor any HTTP API on a
UNIX socket pays. vm.info goes through the VMM thread (the channel and
an eventfd each way) and JSON encoding; vmm.ping through the channel too.

    bench/api.py            # 3000 requests each
    BENCH_REQUESTS=10000 bench/api.py
"""
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, ".build", "bench")
N = int(os.environ.get("BENCH_REQUESTS", "3000"))


def round_trips(path, request, count):
    """Seconds per request/answer pair, each measured on its own."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(path)
    times = []
    for _ in range(count):
        start = time.perf_counter_ns()
        s.sendall(request)
        answer = b""
        while b"\r\n\r\n" not in answer:
            answer += s.recv(65536)
        head, _, body = answer.partition(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
        while len(body) < length:
            body += s.recv(65536)
        times.append(time.perf_counter_ns() - start)
        if not head.startswith(b"HTTP/1.1 200"):
            sys.exit(f"bench: unexpected answer {head[:40]!r}")
    s.close()
    return times


def canned_responder(path, answer, ready):
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(1)
    ready.set()
    conn, _ = server.accept()
    while True:
        data = conn.recv(65536)
        if not data:
            break
        conn.sendall(answer)


def describe(name, ns):
    ns = sorted(ns)
    median = statistics.median(ns) / 1000
    p99 = ns[int(len(ns) * 0.99) - 1] / 1000
    print(f"  {name:28s} median {median:7.1f} µs   p99 {p99:7.1f} µs")
    return median, p99


def main():
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        sys.exit("bench: needs read-write /dev/kvm")
    os.makedirs(OUT, exist_ok=True)
    subprocess.run(["swift", "build", "-c", "release", "--static-swift-stdlib"], check=True, cwd=ROOT)
    spin = os.path.join(OUT, "spin")
    subprocess.run(["scripts/build-guest.sh", "spin", spin], check=True, cwd=ROOT)
    work = tempfile.mkdtemp(prefix="bench-api-")
    sock = os.path.join(work, "api.sock")
    vmm = subprocess.Popen([os.path.join(ROOT, ".build/release/cloud-hypervisor"), "--api-socket", sock,
                            "--kernel", spin, "--serial", "tty", "--console", "off"],
                           stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        if b"spinning" not in vmm.stdout.readline():
            sys.exit("bench: the VM did not come up")
        ping = b"GET /api/v1/vmm.ping HTTP/1.1\r\nHost: localhost\r\n\r\n"
        info = b"GET /api/v1/vm.info HTTP/1.1\r\nHost: localhost\r\n\r\n"
        round_trips(sock, ping, 200)  # warm up
        results = {"ping": round_trips(sock, ping, N), "info": round_trips(sock, info, N)}
        info_size = len(subprocess.run(["curl", "-s", "--unix-socket", sock, "http://localhost/api/v1/vm.info"],
                                       capture_output=True).stdout)
    finally:
        vmm.kill()
        vmm.wait()

    floor = os.path.join(work, "floor.sock")
    body = b"x" * info_size
    answer = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
    ready = threading.Event()
    threading.Thread(target=canned_responder, args=(floor, answer, ready), daemon=True).start()
    ready.wait()
    baseline = round_trips(floor, info, N + 200)[200:]

    print(f"API round trips on one keep-alive connection, {N} each (client: Python, same machine):")
    ping = describe("cloud-hypervisor vmm.ping", results["ping"])
    info_t = describe("cloud-hypervisor vm.info", results["info"])
    base = describe(f"canned {info_size}-byte answer", baseline)
    print(f"  ratio vmm.ping / floor: median {ping[0] / base[0]:.2f}x, p99 {ping[1] / base[1]:.2f}x")
    print(f"  ratio vm.info  / floor: median {info_t[0] / base[0]:.2f}x, p99 {info_t[1] / base[1]:.2f}x")


if __name__ == "__main__":
    main()
