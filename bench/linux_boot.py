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
Prints medians and ratios (cloud-hypervisor / QEMU; goal <= 0.5x to
power-off), and the power-off time split in two: the guest's own clock
when its kernel powers off (its boot and its init's work, what the VMM's
devices and exits cost it included) and the rest (the VMM's start, the
kernel's load, firmware, the exit).

    bench/linux_boot.py            # on the host: builds, runs the lab, prints
    BENCH_RUNS=5 bench/linux_boot.py
"""
import os
import re
import shutil
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


def guest_uptime(text):
    """The guest kernel's clock at its power-off line ("[   14.94] reboot: Power down")."""
    m = re.search(r"\[\s*([0-9.]+)\] reboot: Power down", text)
    if not m:
        sys.exit("bench: the guest's power-off line is missing from its console")
    return float(m.group(1))


def inside(cache, result_path, runs):
    disk = "/run/bench-root.raw"
    samples = {name: [] for name in commands(cache, disk)}
    for run in range(runs):
        for name, cmd in commands(cache, disk).items():
            shutil.copyfile(os.path.join(cache, "l2-disk.raw"), disk)
            log = os.path.join(os.path.dirname(result_path), f"{name}-{run}.log")
            lab.settle()
            first, total, rss, text = lab.timed(cmd, log, MARKER)
            samples[name].append({"root_fs": first, "power_off": total, "rss": rss, "guest": guest_uptime(text)})
        lab.save(result_path, samples)


def main():
    samples = lab.samples(__file__, inside, RUNS, 300 + 150 * RUNS)
    if samples is None:
        return
    for runs in samples.values():
        for r in runs:
            r["rest"] = r["power_off"] - r["guest"]
    m = lab.medians(samples, ("root_fs", "power_off", "guest", "rest"))
    rss = {name: max(r["rss"] for r in runs) for name, runs in samples.items()}
    ch, qemu = m["cloud-hypervisor"], m["qemu-q35"]
    print(f"Linux boot, root on /dev/vda1, {RUNS} interleaved boots each, {CPUS} vCPUs, {MEMORY_MIB}M (nested lab)")
    for name, v in m.items():
        print(f"  {name:17s} to root fs {v['root_fs']:6.2f} s   to power-off {v['power_off']:6.2f} s   peak RSS {rss[name] / 1024:6.1f} MiB")
    print(f"  ratio cloud-hypervisor / QEMU q35: root fs {ch['root_fs'] / qemu['root_fs']:.2f}x, power-off "
          f"{ch['power_off'] / qemu['power_off']:.2f}x (goal <= 0.5x), RSS {rss['cloud-hypervisor'] / rss['qemu-q35']:.2f}x")
    print("  launch to power-off, split (medians): the guest's clock at its power-off + the rest")
    for name, v in m.items():
        print(f"  {name:17s} guest {v['guest']:6.2f} s + {v['rest']:6.2f} s")
    print(f"  ratio of the guest's own time: {ch['guest'] / qemu['guest']:.2f}x")


if __name__ == "__main__":
    main()
