#!/usr/bin/env python3
"""vsock against QEMU's vhost-vsock-pci: stream throughput each way and
64-byte round trips, from L1 to the lab's L2 guest (4 vCPUs, 512M).

This VMM's vsock is Cloud Hypervisor's hybrid vsock: L1 reaches the guest
through the VMM's UNIX socket (CONNECT <port>), and every packet passes
through the VMM's virtio-vsock thread, which copies between the guest's
rings and the UNIX sockets. QEMU's goes through vhost-vsock, in L1's
kernel, reached with AF_VSOCK. To say where the time goes, the CPU time
of the thread moving the data is measured beside each transfer: the VMM's
virtio-vsock thread, and the kernel's vhost worker for QEMU.

The guest (l2.action=vsockbench) listens on three ports: a sink for 64 MiB
from L1, a source of 64 MiB to L1, and an echo for 2,000 round trips of 64
bytes. Runs interleaved; prints medians and ratios.

    bench/vsock.py
    BENCH_RUNS=5 bench/vsock.py
"""
import os
import socket
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lab  # noqa: E402

RUNS = int(os.environ.get("BENCH_RUNS", "3"))
WORK = "/run/bench-vsock"
SIZE = 64 << 20
TRIPS = 2000
FIELDS = ("to_guest_mbps", "from_guest_mbps", "round_trip_us", "cpu_s_per_gib")
CID = 3


def commands(cache):
    kernel = os.path.join(cache, "l2-vmlinux")
    initramfs = os.path.join(cache, "l2-initramfs.cpio")
    cmdline = "console=ttyS0 quiet panic=-1 l2.action=vsockbench"
    return {
        "cloud-hypervisor": [lab.VMM, "--kernel", kernel, "--initramfs", initramfs, "--cmdline", cmdline,
                             "--cpus", "4", "--memory", "size=512M", "--serial", "tty", "--console", "off",
                             "--vsock", f"cid={CID},socket={WORK}/vsock.sock"],
        "qemu-q35": ["qemu-system-x86_64", "-M", "q35", "-accel", "kvm", "-cpu", "host", "-smp", "4", "-m", "512M",
                     "-kernel", kernel, "-initrd", initramfs, "-append", cmdline,
                     "-device", f"vhost-vsock-pci,guest-cid={CID}",
                     "-nodefaults", "-no-user-config", "-nographic", "-serial", "stdio", "-no-reboot"],
    }


def connect(name, port):
    if name == "qemu-q35":
        s = socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM)
        s.connect((CID, port))
        return s
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(f"{WORK}/vsock.sock")
    s.sendall(b"CONNECT %d\n" % port)
    answer = b""
    while not answer.endswith(b"\n"):
        chunk = s.recv(1)
        if not chunk:
            sys.exit(f"bench: the VMM closed the hybrid socket for port {port}")
        answer += chunk
    if not answer.startswith(b"OK "):
        sys.exit(f"bench: CONNECT {port} answered {answer!r}")
    return s


def mover_cpu(name, pid):
    """CPU seconds so far of the thread that moves the data."""
    if name == "qemu-q35":
        # vhost's worker is a kernel thread named for QEMU's pid.
        for task in filter(str.isdigit, os.listdir("/proc")):
            try:
                if open(f"/proc/{task}/comm").read().strip() == f"vhost-{pid}":
                    return ticks(f"/proc/{task}/stat")
            except OSError:
                pass
        sys.exit("bench: no vhost worker for QEMU")
    for task in os.listdir(f"/proc/{pid}/task"):
        if open(f"/proc/{pid}/task/{task}/comm").read().startswith("virtio-vsock"):
            return ticks(f"/proc/{pid}/task/{task}/stat")
    sys.exit("bench: no virtio-vsock thread in the VMM")


def ticks(stat):
    fields = open(stat).read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def one_run(name, cmd, log_path):
    """Boots the guest, drives its three listeners, returns the figures."""
    if os.path.exists(f"{WORK}/vsock.sock"):
        os.unlink(f"{WORK}/vsock.sock")
    log = open(log_path, "wb")
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    ready = threading.Event()

    def follow():
        for line in proc.stdout:
            log.write(line)
            log.flush()
            if b"L2: vsockbench ready" in line:
                ready.set()
    reader = threading.Thread(target=follow)
    reader.start()
    watchdog = threading.Timer(lab.TIMEOUT, proc.kill)
    watchdog.start()
    try:
        if not ready.wait(lab.TIMEOUT):
            sys.exit(f"bench: the guest never got ready, see {log_path}")
        cpu0 = mover_cpu(name, proc.pid)
        block = bytes(1 << 16)
        s = connect(name, 5100)
        start = time.perf_counter()
        for _ in range(SIZE // len(block)):
            s.sendall(block)
        s.shutdown(socket.SHUT_WR)
        while s.recv(1 << 16):
            pass
        to_guest = SIZE / (time.perf_counter() - start) / 1e6
        s.close()

        s = connect(name, 5101)
        start, got = time.perf_counter(), 0
        while True:
            chunk = s.recv(1 << 16)
            if not chunk:
                break
            got += len(chunk)
        from_guest = got / (time.perf_counter() - start) / 1e6
        s.close()
        if got != SIZE:
            sys.exit(f"bench: {got} bytes came from the guest, not {SIZE}")
        cpu = mover_cpu(name, proc.pid) - cpu0

        s = connect(name, 5102)
        message = bytes(64)
        start = time.perf_counter()
        for _ in range(TRIPS):
            s.sendall(message)
            got = 0
            while got < len(message):
                chunk = s.recv(len(message) - got)
                if not chunk:
                    sys.exit("bench: the echo stream ended early")
                got += len(chunk)
        trip = (time.perf_counter() - start) / TRIPS * 1e6
        s.close()
        status = proc.wait(lab.TIMEOUT)
    finally:
        watchdog.cancel()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        reader.join()
        log.close()
    if status != 0:
        sys.exit(f"bench: {name} exited {status}, see {log_path}")
    return {"to_guest_mbps": to_guest, "from_guest_mbps": from_guest, "round_trip_us": trip,
            "cpu_s_per_gib": cpu / (2 * SIZE / (1 << 30))}


def inside(cache, result_path, runs):
    os.makedirs(WORK, exist_ok=True)
    samples = {name: [] for name in commands(cache)}
    for run in range(runs):
        for name, cmd in commands(cache).items():
            log = os.path.join(os.path.dirname(result_path), f"vsock-{name}-{run}.log")
            samples[name].append(one_run(name, cmd, log))
    lab.save(result_path, samples)


def main():
    samples = lab.samples(__file__, inside, RUNS, 300 + 300 * RUNS)
    if samples is None:
        return
    med = lab.medians(samples, FIELDS)
    print(f"vsock from L1 to the guest, {SIZE >> 20} MiB each way, {TRIPS} round trips of 64 bytes, {RUNS} interleaved runs each")
    for name, m in med.items():
        print(f"  {name:17s} " + "   ".join(f"{f} {m[f]:8.2f}" for f in FIELDS))
    ch, q = med["cloud-hypervisor"], med["qemu-q35"]
    print(f"  ratio cloud-hypervisor / QEMU vhost-vsock: to the guest {ch['to_guest_mbps'] / q['to_guest_mbps']:.2f}x, "
          f"from the guest {ch['from_guest_mbps'] / q['from_guest_mbps']:.2f}x, "
          f"round trip {q['round_trip_us'] / ch['round_trip_us']:.2f}x (higher is faster)")
    print(f"  CPU of the thread moving the data, seconds per GiB: virtio-vsock thread {ch['cpu_s_per_gib']:.2f}, "
          f"vhost worker {q['cpu_s_per_gib']:.2f}")


if __name__ == "__main__":
    main()
