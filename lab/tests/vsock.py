#!/usr/bin/env python3
"""The host side of the vsock scenario (vsock.sh), in L1: Cloud
Hypervisor's hybrid socket as a Kata runtime uses it, and the services at
<socket>_<port> the guest connects to. Follows the guest's log, acts when it
says it is ready, and prints one "L1: ..." line per check.

Usage: vsock.py SOCKET LOG PID (the VMM's, or its parent's: timeout)"""
import hashlib
import os
import socket
import sys
import threading
import time

path, log, vmm_pid = sys.argv[1], sys.argv[2], int(sys.argv[3])
for _ in range(100):
    try:
        with open("/proc/%d/comm" % vmm_pid) as f:
            if f.read().strip() != "timeout":
                break
        with open("/proc/%d/task/%d/children" % (vmm_pid, vmm_pid)) as f:
            vmm_pid = int(f.read().split()[0])
        break
    except (OSError, IndexError, ValueError):
        time.sleep(0.1)
MIB = 1 << 20


def say(text):
    print("L1: " + text, flush=True)


def wait_line(text, count=1, timeout=600):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with open(log, errors="replace") as f:
                if f.read().count(text) >= count:
                    return True
        except FileNotFoundError:
            pass
        time.sleep(0.1)
    say("timed out waiting for [%s]" % text)
    return False


def rss_kb():
    with open("/proc/%d/status" % vmm_pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return -1


def read_all(conn):
    digest, total = hashlib.md5(), 0
    while True:
        chunk = conn.recv(1 << 16)
        if not chunk:
            return digest.hexdigest(), total
        digest.update(chunk)
        total += len(chunk)


def serve(port, handler):
    """A service at <socket>_<port>, open to the VMM's dropped user."""
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    name = "%s_%d" % (path, port)
    if os.path.exists(name):
        os.unlink(name)
    server.bind(name)
    os.chmod(name, 0o777)
    server.listen(64)

    def loop():
        while True:
            conn, _ = server.accept()
            threading.Thread(target=handler, args=(conn,), daemon=True).start()
    threading.Thread(target=loop, daemon=True).start()


def connect(port, timeout=30):
    """A hybrid-vsock stream to guest port `port`: the OK line, or None if refused."""
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    conn.settimeout(timeout)
    conn.connect(path)
    conn.sendall(b"CONNECT %d\n" % port)
    line = b""
    while not line.endswith(b"\n"):
        byte = conn.recv(1)
        if not byte:
            conn.close()
            return conn, None
        line += byte
    return conn, line.decode()


phases = []


def phase(conn):
    conn.sendall(b"first\n" if not phases else b"again\n")
    phases.append(1)
    conn.close()


def sink(conn):
    md5, total = read_all(conn)
    say("guest to host: %d bytes md5=%s" % (total, md5))
    conn.close()


def dying(conn):
    got = 0
    while True:
        chunk = conn.recv(1 << 16)
        if not chunk:
            break
        got += len(chunk)
    say("guest died mid-stream: end of stream after %s" % ("data" if got else "nothing"))
    conn.close()


def echo(conn):
    while True:
        chunk = conn.recv(1 << 16)
        if not chunk:
            break
        conn.sendall(chunk)
    conn.close()


def slow(conn):
    # The guest floods; nothing is read for a while: the VMM must not hold it.
    time.sleep(2)
    before = rss_kb()
    time.sleep(4)
    after = rss_kb()
    say("slow reader: VMM VmRSS %d kB then %d kB" % (before, after))
    md5, total = read_all(conn)
    say("slow reader: then read %d bytes" % total)
    conn.close()


serve(4999, phase)
serve(5000, sink)
serve(5001, dying)
serve(5002, echo)
serve(5003, slow)
say("services up")

# Host to guest: 64 MiB, the guest reports its md5.
if wait_line("L2: vsock listening 1024"):
    data = os.urandom(64 * MIB)
    conn, ok = connect(1024)
    say("connect 1024: %s" % (ok.strip() if ok else "refused"))
    if ok:
        start = time.time()
        conn.sendall(data)
        conn.shutdown(socket.SHUT_WR)
        wait_line("L2: vsock received")
        say("host to guest: %d bytes md5=%s in %.1f s" % (len(data), hashlib.md5(data).hexdigest(), time.time() - start))
    conn.close()

# A guest port nobody listens on: the socket closes without an OK.
if wait_line("L2: vsock refused"):
    conn, ok = connect(7777)
    say("connect 7777: %s" % ("closed without OK" if ok is None else ok.strip()))
    conn.close()

# 50 streams at once, each echoed.
if wait_line("L2: vsock echoing"):
    results = []

    def stream(i):
        try:
            conn, ok = connect(1025)
            payload = os.urandom(256 * 1024)
            if ok is None:
                results.append(False)
                return
            sender = threading.Thread(target=lambda: (conn.sendall(payload), conn.shutdown(socket.SHUT_WR)))
            sender.start()
            back = b""
            while True:
                chunk = conn.recv(1 << 16)
                if not chunk:
                    break
                back += chunk
            sender.join()
            results.append(back == payload)
            conn.close()
        except OSError as e:
            say("stream %d: %s" % (i, e))
            results.append(False)
    threads = [threading.Thread(target=stream, args=(i,)) for i in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    say("50 streams: %d echoed intact" % sum(results))

# A host client that closes in the middle of its data.
if wait_line("L2: vsock listening 1026"):
    conn, ok = connect(1026)
    if ok:
        conn.sendall(os.urandom(MIB))
    conn.close()
    say("host closed mid-stream")

wait_line("L2: vsock rebooting")
wait_line("L2: vsock after reboot")
say("done")
