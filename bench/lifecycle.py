#!/usr/bin/env python3
"""Times cloud-hypervisor against a bare C KVM program in one run.

Lifecycle: exec -> create VM -> run a guest that prints "ok" -> power off
-> exit, wall time and peak RSS over interleaved runs. RSS comes from GNU
time, a small C parent: a child forked from Python would count Python's
own pages in its ru_maxrss before the exec.
Exits: a guest doing 100000 port writes; the per-exit cost is its extra
time over the lifecycle guest. Prints medians and ratios (VMM / bare).
"""
import os
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, ".build", "bench")
RUNS = int(os.environ.get("BENCH_RUNS", "30"))
EXITS = 100000


def sh(*cmd):
    subprocess.run(cmd, check=True, cwd=ROOT)


def measure(cmd):
    """Wall seconds and peak RSS (KiB) of one run; fails on a non-zero exit."""
    start = time.perf_counter()
    proc = subprocess.run(["/usr/bin/time", "-f", "%M"] + cmd, capture_output=True)
    wall = time.perf_counter() - start
    if proc.returncode != 0 or proc.stdout != b"ok\n":
        sys.exit(f"bench: {cmd} failed: {proc.stdout!r} {proc.stderr!r}")
    return wall, int(proc.stderr.decode().strip().splitlines()[-1])


def series(commands, runs):
    """Interleaves the commands so that machine noise hits them alike."""
    results = {name: [] for name in commands}
    for _ in range(runs):
        for name, cmd in commands.items():
            results[name].append(measure(cmd))
    return {name: (statistics.median(w for w, _ in r), max(m for _, m in r)) for name, r in results.items()}


def main():
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        sys.exit("bench: needs read-write /dev/kvm")
    os.makedirs(OUT, exist_ok=True)
    sh("scripts/install-deps.sh")
    sh("swift", "build", "-c", "release", "--static-swift-stdlib")
    for guest in ("ok", "pio_loop"):
        sh("scripts/build-guest.sh", guest, os.path.join(OUT, guest))
    bare = os.path.join(OUT, "bare_kvm")
    sh("gcc", "-O2", "-o", bare, "bench/bare_kvm.c")
    vmm = [os.path.join(ROOT, ".build/release/cloud-hypervisor"), "--serial", "tty", "--console", "off",
           "--cpus", "1", "--memory", "size=64M", "--kernel"]

    guests = {g: os.path.join(OUT, g) for g in ("ok", "pio_loop")}
    life = series({"vmm": vmm + [guests["ok"]], "bare": [bare, guests["ok"]]}, RUNS)
    loop = series({"vmm": vmm + [guests["pio_loop"]], "bare": [bare, guests["pio_loop"]]}, max(5, RUNS // 3))

    print(f"lifecycle over {RUNS} runs (median wall, max peak RSS):")
    for name in ("vmm", "bare"):
        print(f"  {name:5} {life[name][0] * 1e3:8.2f} ms  {life[name][1] / 1024:7.2f} MiB")
    exit_cost = {n: (loop[n][0] - life[n][0]) / EXITS * 1e6 for n in ("vmm", "bare")}
    print(f"PIO exit round trip ({EXITS} exits):")
    for name in ("vmm", "bare"):
        print(f"  {name:5} {exit_cost[name]:8.2f} us")
    print("ratios (cloud-hypervisor / bare; targets: wall <= 1.5, RSS <= 1.3, exit <= 1.05):")
    print(f"  wall {life['vmm'][0] / life['bare'][0]:.2f}  rss {life['vmm'][1] / life['bare'][1]:.2f}  "
          f"exit {exit_cost['vmm'] / exit_cost['bare']:.2f}")


if __name__ == "__main__":
    main()
