#!/usr/bin/env python3
"""An operator at the guest's console (consoles.sh): types a command into
the login-less shell there and reads its answer, then powers the guest off.
On a socket it connects twice (the second client takes over); on a pty it
opens the terminal the VMM named. Prints one "L1: ..." line per check.

Usage: shell.py socket PATH | shell.py pty /dev/pts/N"""
import os
import socket
import sys
import time

kind, path = sys.argv[1], sys.argv[2]


def say(text):
    print("L1: " + text, flush=True)


class Socket:
    def __init__(self):
        self.s = socket.socket(socket.AF_UNIX)
        self.s.settimeout(1)
        self.s.connect(path)

    def send(self, data):
        self.s.sendall(data)

    def recv(self):
        try:
            return self.s.recv(4096)
        except socket.timeout:
            return b""

    def close(self):
        self.s.close()


class Pty:
    def __init__(self):
        self.fd = os.open(path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)

    def send(self, data):
        os.write(self.fd, data)

    def recv(self):
        time.sleep(0.2)
        try:
            return os.read(self.fd, 4096)
        except BlockingIOError:
            return b""

    def close(self):
        os.close(self.fd)


def ask(console, n):
    """One command, typed again every 10 s (what is typed before the shell
    reads its terminal is lost); its answer, 90 s at most."""
    seen = b""
    deadline = time.time() + 90
    sent = 0
    while time.time() < deadline:
        if time.time() - sent > 10:
            console.send(b"echo shell-says-$((%d*7))\n" % n)
            sent = time.time()
        seen += console.recv()
        if b"shell-says-%d" % (n * 7) in seen:
            return True
    return False


def wait_for(console, marker, seconds=120):
    """Reads the console until `marker` (the guest's boot goes there too)."""
    seen = b""
    deadline = time.time() + seconds
    while time.time() < deadline and marker not in seen:
        seen += console.recv()
    return marker in seen


try:
    console = Socket() if kind == "socket" else Pty()
except OSError as e:
    say("%s: cannot open %s: %s (/dev/pts holds %s)" % (kind, path, e, sorted(os.listdir("/dev/pts"))))
    sys.exit(1)
if kind == "pty" and not wait_for(console, b"L2: shell on"):
    say("pty: the guest's shell never came")
say("%s: first answer %s" % (kind, "ok" if ask(console, 6) else "missing"))
if kind == "socket":
    console.close()
    console = Socket()
    say("socket: answer after a reconnect %s" % ("ok" if ask(console, 8) else "missing"))
console.send(b"poweroff -f\n")
time.sleep(1)
console.close()
