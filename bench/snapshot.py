#!/usr/bin/env python3
"""Snapshot and restore of a Linux guest in the nested lab, against a cold
boot of the same guest in the same run.

The guest (the lab's L2 kernel and initramfs, root on a virtio disk) boots
to its shell's read on COM1 ("L2: waiting for input"); that cold boot's
launch-to-prompt time is the baseline. The VM is then paused and
snapshotted (time of the vm.snapshot request; the memory file's size on
disk against its apparent size), its VMM killed, and a new VMM restores it
with resume=on and is sent a line at once: launch to the guest's answer
("L2: got [...]") is restore-to-running, what a VM factory sells. 512 MiB
and 2 GiB guests, interleaved runs. Prints medians and the ratio
restore / cold boot.

    bench/snapshot.py
    BENCH_RUNS=5 bench/snapshot.py
"""
import os
import shutil
import signal
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lab  # noqa: E402

RUNS = int(os.environ.get("BENCH_RUNS", "3"))
SIZES = ("512M", "2G")
CMDLINE = "console=ttyS0 root=/dev/vda1 rw quiet panic=-1 l2.action=echo"
WORK = "/run/snapshot-bench"


def launch(args, log_path):
    """The VMM with a pipe for COM1's input; (process, start time, log)."""
    log = open(log_path, "wb")
    start = time.perf_counter()
    proc = subprocess.Popen([lab.VMM] + args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    return proc, start, log


def until(proc, start, log, marker):
    """Seconds from `start` to the console line holding `marker`."""
    for line in proc.stdout:
        log.write(line)
        log.flush()
        if marker in line:
            return time.perf_counter() - start
    sys.exit(f"bench: the VMM exited ({proc.wait()}) before {marker!r}, see {log.name}")


def api(sock, endpoint, body=None):
    """Seconds the PUT took; fails the benchmark on an error answer."""
    start = time.perf_counter()
    cmd = ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--unix-socket", sock, "-X", "PUT"]
    code = subprocess.run(cmd + (["-d", body] if body else []) + [f"http://localhost/api/v1/{endpoint}"],
                          capture_output=True, text=True).stdout
    if code != "204":
        sys.exit(f"bench: {endpoint} answered {code}")
    return time.perf_counter() - start


def one(cache, size, run, out):
    shutil.rmtree(WORK, ignore_errors=True)
    snap = os.path.join(WORK, "snap")
    os.makedirs(snap)
    disk = os.path.join(WORK, "disk.raw")
    subprocess.run(["cp", "--sparse=always", os.path.join(cache, "l2-disk.raw"), disk], check=True)
    one_sock, two_sock = os.path.join(WORK, "one.sock"), os.path.join(WORK, "two.sock")
    cold, start, log = launch(["--api-socket", one_sock, "--kernel", os.path.join(cache, "l2-vmlinux"),
                               "--initramfs", os.path.join(cache, "l2-initramfs.cpio"), "--disk", f"path={disk}",
                               "--cmdline", CMDLINE, "--cpus", "2", "--memory", f"size={size}",
                               "--serial", "tty", "--console", "off"], os.path.join(out, f"cold-{size}-{run}.log"))
    boot = until(cold, start, log, b"L2: waiting for input")
    api(one_sock, "vm.pause")
    snapshot = api(one_sock, "vm.snapshot", f'{{"destination_url":"file://{snap}"}}')
    memory = os.stat(os.path.join(snap, "memory"))
    cold.send_signal(signal.SIGKILL)
    cold.wait()
    restored, start, log = launch(["--api-socket", two_sock, "--restore", f"source_url=file://{snap},resume=on"],
                                  os.path.join(out, f"restore-{size}-{run}.log"))
    restored.stdin.write(b"hello\n")
    restored.stdin.flush()
    restore = until(restored, start, log, b"L2: got [hello]")
    if restored.wait(timeout=lab.TIMEOUT) != 0:
        sys.exit(f"bench: the restored VMM exited {restored.returncode}, see {log.name}")
    return {"cold_boot": boot, "snapshot": snapshot, "restore": restore,
            "memory_mib": memory.st_blocks * 512 / 2**20, "ram_mib": memory.st_size / 2**20}


def inside(cache, result_path, runs):
    out = os.path.dirname(result_path)
    samples = {size: [] for size in SIZES}
    for run in range(runs):
        for size in SIZES:
            samples[size].append(one(cache, size, run, out))
    shutil.rmtree(WORK, ignore_errors=True)
    lab.save(result_path, samples)


def main():
    samples = lab.samples(__file__, inside, RUNS, 300 + 200 * RUNS)
    if samples is None:
        return
    print(f"Snapshot and restore of the lab's Linux guest (2 vCPUs, root on virtio-blk), {RUNS} runs each, medians:")
    for size, runs in samples.items():
        m = {f: statistics.median(r[f] for r in runs) for f in runs[0]}
        print(f"  {size:>4}: vm.snapshot {m['snapshot']:6.2f} s, memory file {m['memory_mib']:7.1f} MiB on disk of "
              f"{m['ram_mib']:6.0f} MiB; cold boot to the prompt {m['cold_boot']:6.2f} s, restore (resume=on) to the "
              f"guest's answer {m['restore']:6.2f} s: ratio restore / cold boot {m['restore'] / m['cold_boot']:.2f}x")


if __name__ == "__main__":
    main()
