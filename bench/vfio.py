#!/usr/bin/env python3
"""Device assignment: cloud-hypervisor against QEMU -M q35 with vfio-pci.

Inside the nested lab's L1, both VMMs get the same two assigned devices
(edu, NVMe) and the same initramfs-only guest (4 vCPUs):
  - one read from an mmapped BAR (edu's liveness register: a KVM memory
    slot here, no exit) and one from a trapped range (the NVMe MSI-X
    table, trapped by both), in ns, from bench/guest/barbench.c;
  - launch to the guest's NVMe driver probe ("nvme0: ... queues") with 512M
    and 3G of RAM (DMA mapping pins all of it).
Interleaved runs; prints medians and ratios (cloud-hypervisor / QEMU).

    bench/vfio.py
    BENCH_RUNS=5 bench/vfio.py
"""
import os
import re
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lab  # noqa: E402

RUNS = int(os.environ.get("BENCH_RUNS", "3"))
CMDLINE = "console=ttyS0 panic=-1 l2.action=barbench"
PROBE = b"default/read/poll queues"


def devices():
    found = {}
    for bdf in sorted(os.listdir("/sys/bus/pci/devices")):
        ids = tuple(open(f"/sys/bus/pci/devices/{bdf}/{f}").read().strip() for f in ("vendor", "device"))
        if ids in (("0x1234", "0x11e8"), ("0x1b36", "0x0010")):
            found.setdefault(ids[1], bdf)
    return found["0x11e8"], found["0x0010"]


def commands(cache, memory):
    kernel = os.path.join(cache, "l2-vmlinux")
    initramfs = os.path.join(cache, "l2-initramfs.cpio")
    edu, nvme = devices()
    return {
        "cloud-hypervisor": [lab.VMM, "--kernel", kernel, "--initramfs", initramfs, "--cmdline", CMDLINE,
                             "--cpus", "4", "--memory", f"size={memory}", "--serial", "tty", "--console", "off",
                             "--device", f"path={edu}", f"path={nvme}"],
        "qemu-q35": ["qemu-system-x86_64", "-M", "q35", "-accel", "kvm", "-cpu", "host", "-smp", "4", "-m", memory,
                     "-kernel", kernel, "-initrd", initramfs, "-append", CMDLINE,
                     "-device", f"vfio-pci,host={edu}", "-device", f"vfio-pci,host={nvme}",
                     "-nodefaults", "-no-user-config", "-nographic", "-serial", "stdio", "-no-reboot"],
    }


def inside(cache, result_path, runs):
    samples = {}
    for run in range(runs):
        for memory in ("512M", "3G"):
            for name, cmd in commands(cache, memory).items():
                log = os.path.join(os.path.dirname(result_path), f"{name}-{memory}-{run}.log")
                probe, _, _, text = lab.timed(cmd, log, PROBE)
                entry = samples.setdefault(name, {}).setdefault(memory, [])
                found = dict(re.findall(r"L2: bench (\w+) ns_per_read=(\d+)", text))
                entry.append({"probe": probe, **{k: float(v) for k, v in found.items()}})
    lab.save(result_path, samples)


def main():
    samples = lab.samples(__file__, inside, RUNS, 300 + 300 * RUNS)
    if samples is None:
        return
    med = {name: {mem: {k: statistics.median(r[k] for r in runs if k in r) for k in ("probe", "mapped", "msix")}
                  for mem, runs in by_mem.items()} for name, by_mem in samples.items()}
    print(f"VFIO in the nested lab (edu + NVMe assigned), {RUNS} interleaved runs each")
    for name, by_mem in med.items():
        m = by_mem["512M"]
        print(f"  {name:17s} mmapped BAR read {m['mapped']:8.0f} ns   trapped (MSI-X table) read {m['msix']:8.0f} ns   "
              f"launch to NVMe probe: 512M {m['probe']:6.2f} s, 3G {by_mem['3G']['probe']:6.2f} s")
    ch, q = med["cloud-hypervisor"], med["qemu-q35"]
    print(f"  ratio cloud-hypervisor / QEMU: mmapped read {ch['512M']['mapped'] / q['512M']['mapped']:.2f}x, "
          f"trapped read {ch['512M']['msix'] / q['512M']['msix']:.2f}x (goal <= 1.0x), "
          f"probe 512M {ch['512M']['probe'] / q['512M']['probe']:.2f}x, 3G {ch['3G']['probe'] / q['3G']['probe']:.2f}x (goal <= 1.0x)")


if __name__ == "__main__":
    main()
