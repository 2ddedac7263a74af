#!/usr/bin/env python3
"""Linux boot with root on /dev/vda1: cloud-hypervisor against QEMU -M q35.

The mission's command shape (4 vCPUs, 512M, a raw disk whose first
partition is the ext4 root, serial console) booted by both VMMs inside the
nested lab's L1 (the only place Linux boots: shared/LAB.md), interleaved so
that L1's noise hits them alike: the same PVH vmlinux, initramfs (it loads
the virtio modules and switches root), command line and disk image (a fresh
copy per boot). QEMU gets the disk as virtio-blk-pci. Measured per boot:
launch to the guest's first line from its root file system, launch to the
VMM's exit after the guest's power-off, and the peak RSS (GNU time).
Prints medians and ratios (cloud-hypervisor / QEMU).

    bench/linux_boot.py            # on the host: builds, runs the lab, prints
    BENCH_RUNS=5 bench/linux_boot.py
"""
import os
import shutil
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lab  # noqa: E402

RUNS = int(os.environ.get("BENCH_RUNS", "3"))
MARKER = b"L2: root=/dev/vda1"
CMDLINE = "console=ttyS0 root=/dev/vda1 rw quiet panic=-1"
CPUS, MEMORY_MIB = 4, 512


def commands(cache, disk):
    kernel = os.path.join(cache, "l2-vmlinux")
    initramfs = os.path.join(cache, "l2-initramfs.cpio")
    return {
        "cloud-hypervisor": [lab.VMM, "--kernel", kernel, "--initramfs", initramfs, "--disk", f"path={disk}",
                             "--cmdline", CMDLINE, "--cpus", str(CPUS), "--memory", f"size={MEMORY_MIB}M",
                             "--serial", "tty", "--console", "off"],
        "qemu-q35": ["qemu-system-x86_64", "-M", "q35", "-accel", "kvm", "-cpu", "host", "-smp", str(CPUS),
                     "-m", f"{MEMORY_MIB}M", "-kernel", kernel, "-initrd", initramfs, "-append", CMDLINE,
                     "-drive", f"file={disk},if=none,id=root,format=raw", "-device", "virtio-blk-pci,drive=root",
                     "-nodefaults", "-no-user-config", "-nographic", "-serial", "stdio", "-no-reboot"],
    }


def inside(cache, result_path, runs):
    disk = "/run/bench-root.raw"
    samples = {name: [] for name in commands(cache, disk)}
    for run in range(runs):
        for name, cmd in commands(cache, disk).items():
            shutil.copyfile(os.path.join(cache, "l2-disk.raw"), disk)
            log = os.path.join(os.path.dirname(result_path), f"{name}-{run}.log")
            first, total, rss, _ = lab.timed(cmd, log, MARKER)
            samples[name].append((first, total, rss))
        lab.save(result_path, samples)


def main():
    samples = lab.samples(__file__, inside, RUNS, 300 + 150 * RUNS)
    if samples is None:
        return
    summary = {name: (statistics.median(s[0] for s in runs), statistics.median(s[1] for s in runs),
                      max(s[2] for s in runs)) for name, runs in samples.items()}
    ch, qemu = summary["cloud-hypervisor"], summary["qemu-q35"]
    print(f"Linux boot, root on /dev/vda1, {RUNS} interleaved boots each, {CPUS} vCPUs, {MEMORY_MIB}M (nested lab)")
    for name, (first, total, rss) in summary.items():
        print(f"  {name:17s} to root fs {first:6.2f} s   to power-off {total:6.2f} s   peak RSS {rss / 1024:6.1f} MiB")
    print(f"  ratio cloud-hypervisor / QEMU q35: root fs {ch[0] / qemu[0]:.2f}x, power-off {ch[1] / qemu[1]:.2f}x "
          f"(goal <= 0.8x), RSS {ch[2] / qemu[2]:.2f}x")


if __name__ == "__main__":
    main()
