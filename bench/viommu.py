#!/usr/bin/env python3
"""The virtual IOMMU's cost, in one L1 run of the nested lab.

virtio-blk: Debian 13's cloud kernel (2 vCPUs, 512M, iommu.strict=1 as the
lab runs it) runs bench/guest/blkbench on a 512 MiB raw scratch disk on L1's
tmpfs (direct I/O: sequential 1 MiB writes and reads, 4 KiB random reads
from 4 threads) under cloud-hypervisor without and with iommu=on, and under
QEMU q35 with virtio-iommu-pci and iommu_platform=on: every request's
buffers are mapped and unmapped through the IOMMU.

VFIO: the edu assigned with iommu=on, a userspace driver on the guest's
own vfio-pci (lab/guest/viommu_dma.c bench) maps and unmaps a 4 KiB buffer
(VFIO_IOMMU_MAP_DMA + UNMAP_DMA: through virtio-iommu to this VMM's
container in L1) and has the edu copy it there and back; then the same
program on L1's own VFIO against the same edu, with no VMM between.

Runs are interleaved; prints medians and ratios.

    bench/viommu.py
    BENCH_RUNS=5 bench/viommu.py
"""
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lab  # noqa: E402

RUNS = int(os.environ.get("BENCH_RUNS", "3"))
BASE = "console=ttyS0 quiet panic=-1 iommu.strict=1"
BLK = ("seq_write_mbps", "seq_read_mbps", "rand_read_iops")
DMA = ("map_unmap_per_s", "dma_round_trips_per_s")


def edu():
    """L1's first edu alone in its IOMMU group, on vfio-pci."""
    for d in sorted(os.listdir("/sys/bus/pci/devices")):
        path = f"/sys/bus/pci/devices/{d}"
        if (open(f"{path}/vendor").read().strip(), open(f"{path}/device").read().strip()) == ("0x1234", "0x11e8") \
                and os.path.basename(os.readlink(f"{path}/driver")) == "vfio-pci" \
                and len(os.listdir(f"{path}/iommu_group/devices")) == 1:
            return d
    sys.exit("bench: no edu on vfio-pci alone in its group in L1")


def blk_commands(cache, root, scratch):
    kernel, initramfs = os.path.join(cache, "l2-trixie-bzImage"), os.path.join(cache, "l2-trixie-initramfs.cpio")
    cmdline = BASE + " l2.action=blkbench"

    def ch(iommu):
        suffix = ",iommu=on" if iommu else ""
        return [lab.VMM, "--kernel", kernel, "--initramfs", initramfs, "--cmdline", cmdline, "--cpus", "2",
                "--memory", "size=512M", "--serial", "tty", "--console", "off",
                "--disk", f"path={root}{suffix}", f"path={scratch},num_queues=2{suffix}"]
    return {
        "ch": ch(False),
        "ch-iommu": ch(True),
        "qemu-iommu": ["qemu-system-x86_64", "-M", "q35", "-accel", "kvm", "-cpu", "host", "-smp", "2", "-m", "512M",
                       "-kernel", kernel, "-initrd", initramfs, "-append", cmdline, "-device", "virtio-iommu-pci",
                       "-drive", f"file={root},if=none,id=d0,format=raw",
                       "-device", "virtio-blk-pci,drive=d0,iommu_platform=on,disable-legacy=on",
                       "-drive", f"file={scratch},if=none,id=d1,format=raw",
                       "-device", "virtio-blk-pci,drive=d1,num-queues=2,iommu_platform=on,disable-legacy=on",
                       "-nodefaults", "-no-user-config", "-nographic", "-serial", "stdio", "-no-reboot"],
    }


def parse(text, prefix):
    line = re.search(prefix + r" (.*)", text).group(1)
    return {k: float(v) for k, v in (f.split("=") for f in line.split())}


def inside(cache, result_path, runs):
    root, scratch = "/run/bench-root.raw", "/run/bench-scratch.raw"
    subprocess.run(["cp", os.path.join(cache, "l2-disk.raw"), root], check=True)
    subprocess.run(["truncate", "-s", "512M", scratch], check=True)
    device = edu()
    guest_dma = [lab.VMM, "--kernel", os.path.join(cache, "l2-trixie-bzImage"),
                 "--initramfs", os.path.join(cache, "l2-trixie-initramfs.cpio"),
                 "--cmdline", BASE + " l2.action=viommu l2.viommu=bench,5", "--cpus", "2", "--memory", "size=512M",
                 "--serial", "tty", "--console", "off", "--device", f"path=/sys/bus/pci/devices/{device}/,iommu=on"]
    host_dma = [os.path.join(cache, "l2-root/bin/viommu_dma"), "bench", "5", device]
    samples = {name: [] for name in list(blk_commands(cache, root, scratch)) + ["guest-vfio", "host-vfio"]}
    out = os.path.dirname(result_path)
    for run in range(runs):
        for name, cmd in blk_commands(cache, root, scratch).items():
            _, _, _, text = lab.timed(cmd, os.path.join(out, f"{name}-{run}.log"), b"L2: bench ")
            samples[name].append(parse(text, "L2: bench"))
        _, _, _, text = lab.timed(guest_dma, os.path.join(out, f"guest-vfio-{run}.log"), b"L2: viommu bench ")
        samples["guest-vfio"].append(parse(text, "L2: viommu bench"))
        text = subprocess.run(host_dma, check=True, capture_output=True, text=True).stdout
        samples["host-vfio"].append(parse(text, "L2: viommu bench"))
    lab.save(result_path, samples)


def main():
    samples = lab.samples(__file__, inside, RUNS, 400 + 400 * RUNS)
    if samples is None:
        return
    blk = lab.medians({k: v for k, v in samples.items() if k in ("ch", "ch-iommu", "qemu-iommu")}, BLK)
    dma = lab.medians({k: v for k, v in samples.items() if k in ("guest-vfio", "host-vfio")}, DMA)
    print(f"virtual IOMMU in the nested lab, {RUNS} interleaved runs each (Debian 13 guest, 2 vCPUs, iommu.strict=1)")
    for name, m in blk.items():
        print(f"  {name:11s} seq write {m['seq_write_mbps']:7.1f} MB/s   seq read {m['seq_read_mbps']:7.1f} MB/s   "
              f"4K random read {m['rand_read_iops']:8.0f} IOPS")
    ch, on, q = blk["ch"], blk["ch-iommu"], blk["qemu-iommu"]
    print("  virtio-blk iommu=on / off:           " + ", ".join(f"{f} {on[f] / ch[f]:.2f}x" for f in BLK))
    print("  virtio-blk iommu=on / QEMU's (goal >= 1.0x): " + ", ".join(f"{f} {on[f] / q[f]:.2f}x" for f in BLK))
    for name, m in dma.items():
        print(f"  {name:11s} map+unmap {m['map_unmap_per_s']:9.1f}/s   edu DMA round trips {m['dma_round_trips_per_s']:5.2f}/s")
    g, h = dma["guest-vfio"], dma["host-vfio"]
    print("  the guest's VFIO through the virtual IOMMU / L1's own: " + ", ".join(f"{f} {g[f] / h[f]:.2f}x" for f in DMA))


if __name__ == "__main__":
    main()
