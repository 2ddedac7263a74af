#!/usr/bin/env python3
"""Live migration of a running Linux guest in the nested lab, this VMM
against QEMU's `migrate` of the same guest shape in the same L1.

The guest (the lab's L2 kernel and initramfs, root on a virtio disk, 2
vCPUs, 512 MiB) fills 48 MiB of tmpfs with random bytes and prints a tick
every 100 ms on COM1 (l2-init's "migrate"). Once it is ready, it moves to a
second process on the same L1 over a UNIX socket: for this VMM
send-migration / receive-migration, for QEMU `migrate` to a destination
started with `-incoming` (its bandwidth limit lifted, its downtime limit
300 ms as ours). Measured: the total time of the migration (the API call;
QEMU's query-migrate total-time), the downtime each reports, and the gap
the guest shows: L1's time between the last tick on the source's console
and the first on the destination's (ticks are 100 ms apart, so the gap is
at least that). Interleaved runs, medians, ratios this VMM / QEMU.

    bench/migration.py
    BENCH_RUNS=5 bench/migration.py
"""
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lab  # noqa: E402

RUNS = int(os.environ.get("BENCH_RUNS", "3"))
CMDLINE = "console=ttyS0 root=/dev/vda1 rw quiet panic=-1 l2.action=migrate"
WORK = "/run/migration-bench"


class Console:
    """A process's standard output, each line stamped with L1's clock as it arrives."""

    def __init__(self, proc, log_path):
        self.proc, self.lines, self.log = proc, [], open(log_path, "wb")
        self.thread = threading.Thread(target=self.read, daemon=True)
        self.thread.start()

    def read(self):
        for line in self.proc.stdout:
            self.lines.append((time.perf_counter(), line))
            self.log.write(line)
            self.log.flush()

    def wait_for(self, marker, timeout=lab.TIMEOUT):
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline:
            if any(marker in line for _, line in list(self.lines)):
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        sys.exit(f"bench: no {marker!r} (exit {self.proc.poll()}), see {self.log.name}")

    def ticks(self):
        return [t for t, line in list(self.lines) if b"L2: tick" in line]


def start(args, log_path):
    proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    return proc, Console(proc, log_path)


def api(sock, endpoint, body=None):
    cmd = ["curl", "-s", "-w", "\n%{http_code}", "--unix-socket", sock, "-X", "PUT"]
    out = subprocess.run(cmd + (["-d", body] if body else []) + [f"http://localhost/api/v1/{endpoint}"],
                         capture_output=True, text=True).stdout
    if not out.endswith("204"):
        sys.exit(f"bench: {endpoint} answered {out}")


def wait_socket(path):
    for _ in range(200):
        if os.path.exists(path):
            return
        time.sleep(0.05)
    sys.exit(f"bench: no socket {path}")


def gap(source, destination):
    """L1's seconds between the last tick on the source and the first on the destination."""
    first = destination.ticks()
    last = [t for t in source.ticks() if not first or t < first[0]]
    return first[0] - last[-1]


def finish(console, stdin_line):
    console.proc.stdin.write(stdin_line)
    console.proc.stdin.flush()
    console.proc.wait(timeout=lab.TIMEOUT)


def ours(cache, disk, run, out):
    src_sock, dst_sock, mig = (os.path.join(WORK, n) for n in ("src.sock", "dst.sock", "mig.sock"))
    src, src_out = start([lab.VMM, "-v", "--api-socket", src_sock, "--kernel", os.path.join(cache, "l2-vmlinux"),
                          "--initramfs", os.path.join(cache, "l2-initramfs.cpio"), "--disk", f"path={disk}",
                          "--cmdline", CMDLINE, "--cpus", "2", "--memory", "size=512M",
                          "--serial", "tty", "--console", "off"], os.path.join(out, f"ours-src-{run}.log"))
    src_out.wait_for(b"L2: migrate ready")
    dst, dst_out = start([lab.VMM, "-v", "--api-socket", dst_sock], os.path.join(out, f"ours-dst-{run}.log"))
    wait_socket(dst_sock)
    receiver = threading.Thread(target=api, args=(dst_sock, "vm.receive-migration", f'{{"receiver_url":"unix:{mig}"}}'))
    receiver.start()
    wait_socket(mig)
    began = time.perf_counter()
    api(src_sock, "vm.send-migration", f'{{"destination_url":"unix:{mig}"}}')
    total = time.perf_counter() - began
    receiver.join()
    src.wait(timeout=lab.TIMEOUT)
    dst_out.wait_for(b"L2: tick")
    time.sleep(1)
    reported = re.search(rb"downtime (\d+) ms", b"".join(line for _, line in src_out.lines))
    result = {"total": total, "downtime": int(reported.group(1)) / 1000 if reported else 0.0, "gap": gap(src_out, dst_out)}
    finish(dst_out, b"done\n")
    return result


class QMP:
    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX)
        for _ in range(200):
            try:
                self.sock.connect(path)
                break
            except OSError:
                time.sleep(0.05)
        self.file = self.sock.makefile("rwb")
        self.file.readline()
        self.call("qmp_capabilities")

    def call(self, command, **arguments):
        self.file.write(json.dumps({"execute": command, "arguments": arguments}).encode() + b"\n")
        self.file.flush()
        while True:
            answer = json.loads(self.file.readline())
            if "return" in answer:
                return answer["return"]
            if "error" in answer:
                sys.exit(f"bench: QEMU {command}: {answer['error']}")


def qemu(cache, disk, run, out):
    mig, src_qmp, dst_qmp = (os.path.join(WORK, n) for n in ("qemu-mig.sock", "src.qmp", "dst.qmp"))
    base = ["qemu-system-x86_64", "-M", "q35", "-accel", "kvm", "-cpu", "host", "-smp", "2", "-m", "512M",
            "-kernel", os.path.join(cache, "l2-vmlinux"), "-initrd", os.path.join(cache, "l2-initramfs.cpio"),
            "-append", CMDLINE, "-drive", f"file={disk},if=none,id=root,format=raw", "-device", "virtio-blk-pci,drive=root",
            "-nodefaults", "-no-user-config", "-nographic", "-serial", "stdio"]
    src, src_out = start(base + ["-qmp", f"unix:{src_qmp},server=on,wait=off"], os.path.join(out, f"qemu-src-{run}.log"))
    src_out.wait_for(b"L2: migrate ready")
    dst, dst_out = start(base + ["-qmp", f"unix:{dst_qmp},server=on,wait=off", "-incoming", f"unix:{mig}"],
                         os.path.join(out, f"qemu-dst-{run}.log"))
    wait_socket(mig)
    control = QMP(src_qmp)
    control.call("migrate-set-parameters", **{"max-bandwidth": 100 << 30, "downtime-limit": 300})
    began = time.perf_counter()
    control.call("migrate", uri=f"unix:{mig}")
    while True:
        state = control.call("query-migrate")
        if state.get("status") in ("completed", "failed", "cancelled"):
            break
        time.sleep(0.02)
    total = time.perf_counter() - began
    if state["status"] != "completed":
        sys.exit(f"bench: QEMU's migration {state['status']}")
    control.call("quit")
    src.wait(timeout=lab.TIMEOUT)
    dst_out.wait_for(b"L2: tick")
    time.sleep(1)
    result = {"total": total, "downtime": state.get("downtime", 0) / 1000, "gap": gap(src_out, dst_out)}
    finish(dst_out, b"done\n")
    return result


def inside(cache, result_path, runs):
    out = os.path.dirname(result_path)
    samples = {"cloud-hypervisor": [], "qemu-q35": []}
    for run in range(runs):
        for name, migrate in (("cloud-hypervisor", ours), ("qemu-q35", qemu)):
            shutil.rmtree(WORK, ignore_errors=True)
            os.makedirs(WORK)
            disk = os.path.join(WORK, "disk.raw")
            subprocess.run(["cp", "--sparse=always", os.path.join(cache, "l2-disk.raw"), disk], check=True)
            samples[name].append(migrate(cache, disk, run, out))
    shutil.rmtree(WORK, ignore_errors=True)
    lab.save(result_path, samples)


def main():
    samples = lab.samples(__file__, inside, RUNS, 300 + 300 * RUNS)
    if samples is None:
        return
    m = lab.medians(samples, ("total", "downtime", "gap"))
    print(f"Live migration of the lab's Linux guest (2 vCPUs, 512 MiB, 48 MiB of it random, root on virtio-blk) "
          f"over a UNIX socket in one L1, {RUNS} runs, medians:")
    for name, v in m.items():
        print(f"  {name:>16}: total {v['total']:6.2f} s, reported downtime {v['downtime'] * 1000:6.0f} ms, "
              f"gap in the guest's ticks {v['gap'] * 1000:6.0f} ms")
    ours_m, qemu_m = m["cloud-hypervisor"], m["qemu-q35"]
    print(f"  ratio this VMM / QEMU: total {ours_m['total'] / qemu_m['total']:.2f}x (goal <= 1.0x), "
          f"gap {ours_m['gap'] / qemu_m['gap']:.2f}x (goal <= 1.0x: downtime no longer than QEMU's)")


if __name__ == "__main__":
    main()
