#!/usr/bin/env python3
"""Linux boot: cloud-hypervisor against QEMU -M microvm, in one lab run.

Both boot the lab's L2 cloud kernel (the PVH vmlinux) with the same
initramfs, command line, vCPUs and memory inside the nested lab's L1 (the
only place Linux boots: shared/LAB.md), interleaved so that L1's noise
hits them alike. Measured per boot: the time from exec to the guest's
first userspace line on the serial console, and the peak RSS of the
process (GNU time; guest pages it touched included, alike for both).
Prints medians and ratios (cloud-hypervisor / QEMU).

    bench/linux_boot.py            # on the host: builds, runs the lab, prints
    BENCH_RUNS=3 bench/linux_boot.py
The lab runs this same file with --inside CACHE RESULT RUNS to take the measures.
"""
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RUNS = int(os.environ.get("BENCH_RUNS", "5"))
MARKER = b"L2: userspace up"
CMDLINE = "console=ttyS0 quiet panic=-1"
CPUS, MEMORY_MIB = 2, 512
BOOT_TIMEOUT = 240


def commands(cache):
    kernel = os.path.join(cache, "l2-vmlinux")
    initramfs = os.path.join(cache, "l2-initramfs.cpio")
    return {
        "cloud-hypervisor": [os.path.join(ROOT, ".build/release/cloud-hypervisor"),
                             "--kernel", kernel, "--initramfs", initramfs, "--cmdline", CMDLINE,
                             "--cpus", f"boot={CPUS}", "--memory", f"size={MEMORY_MIB}M",
                             "--serial", "tty", "--console", "off"],
        "qemu-microvm": ["qemu-system-x86_64", "-M", "microvm", "-accel", "kvm", "-cpu", "host",
                         "-smp", str(CPUS), "-m", f"{MEMORY_MIB}M", "-kernel", kernel, "-initrd", initramfs,
                         "-append", CMDLINE, "-nodefaults", "-no-user-config", "-nographic",
                         "-serial", "stdio", "-no-reboot"],
    }


def boot(cmd, log_path):
    """Seconds from exec to the first userspace line, and peak RSS in KiB.
    The console goes to log_path; a boot is killed after BOOT_TIMEOUT."""
    rss_path = log_path + ".rss"
    with open(log_path, "wb") as log:
        start = time.perf_counter()
        proc = subprocess.Popen(["/usr/bin/time", "-f", "%M", "-o", rss_path] + cmd,
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        watchdog = threading.Timer(BOOT_TIMEOUT, proc.kill)
        watchdog.start()
        first_line = None
        for line in proc.stdout:
            log.write(line)
            log.flush()
            if first_line is None and MARKER in line:
                first_line = time.perf_counter() - start
        status = proc.wait()
        watchdog.cancel()
    if status != 0 or first_line is None:
        tail = open(log_path, "rb").read()[-2000:].decode(errors="replace")
        sys.exit(f"bench: {cmd[0]} exited {status} (killed after {BOOT_TIMEOUT} s?), see {log_path}:\n{tail}")
    return first_line, int(open(rss_path).read().split()[-1])


def inside(cache, result_path, runs):
    cmds = commands(cache)
    samples = {name: [] for name in cmds}
    for run in range(runs):
        for name, cmd in cmds.items():
            log = os.path.join(os.path.dirname(result_path), f"{name}-{run}.log")
            samples[name].append(boot(cmd, log))
    with open(result_path, "w") as f:
        json.dump(samples, f)


def main():
    if len(sys.argv) == 5 and sys.argv[1] == "--inside":
        return inside(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    subprocess.run(["scripts/install-deps.sh"], check=True, cwd=ROOT)
    cache = subprocess.run(["lab/setup.sh"], check=True, cwd=ROOT, capture_output=True, text=True).stdout.strip()
    subprocess.run(["swift", "build", "-c", "release", "--static-swift-stdlib"], check=True, cwd=ROOT)
    out = tempfile.mkdtemp(prefix="bench-linux-")
    result = os.path.join(out, "result.json")
    subprocess.run([os.path.join(ROOT, "lab/run.sh"), "--out", out, "--timeout", str(300 + 120 * RUNS), "--",
                    f"python3 {os.path.abspath(__file__)} --inside {cache} {result} {RUNS}"],
                   check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
    print(f"(consoles of each boot in {out})")
    samples = json.load(open(result))
    summary = {name: (statistics.median(t for t, _ in s), max(m for _, m in s)) for name, s in samples.items()}
    ch, qemu = summary["cloud-hypervisor"], summary["qemu-microvm"]
    print(f"Linux boot in the nested lab, {RUNS} interleaved boots each, {CPUS} vCPUs, {MEMORY_MIB}M, vmlinux (PVH)")
    for name, (t, m) in summary.items():
        print(f"  {name:17s} to first userspace line {t:7.2f} s (median)   peak RSS {m / 1024:7.1f} MiB")
    print(f"  ratio cloud-hypervisor / QEMU microvm: time {ch[0] / qemu[0]:.2f}x (goal <= 0.8x), RSS {ch[1] / qemu[1]:.2f}x")


if __name__ == "__main__":
    main()
