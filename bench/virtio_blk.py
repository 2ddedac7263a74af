#!/usr/bin/env python3
"""virtio-blk throughput: cloud-hypervisor against QEMU's virtio-blk-pci.

Inside the nested lab's L1, each VMM boots the lab's L2 kernel (4 vCPUs,
512M) with a 512 MiB raw scratch disk on L1's tmpfs as its second disk;
the guest runs bench/guest/blkbench on it with direct I/O: sequential
1 MiB writes and reads (MB/s) and 4 KiB random reads from 4 threads
(IOPS). QEMU runs with its defaults (cache=writeback, aio=threads), as a
user gets it. Runs are interleaved; prints medians and ratios (goal: >= 1.0x).

    bench/virtio_blk.py
    BENCH_RUNS=5 bench/virtio_blk.py
"""
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lab  # noqa: E402

RUNS = int(os.environ.get("BENCH_RUNS", "3"))
CMDLINE = "console=ttyS0 quiet panic=-1 l2.action=blkbench"
FIELDS = ("seq_write_mbps", "seq_read_mbps", "rand_read_iops")


def commands(cache, root, scratch):
    kernel = os.path.join(cache, "l2-vmlinux")
    initramfs = os.path.join(cache, "l2-initramfs.cpio")
    return {
        "cloud-hypervisor": [lab.VMM, "--kernel", kernel, "--initramfs", initramfs, "--cmdline", CMDLINE,
                             "--cpus", "4", "--memory", "size=512M", "--serial", "tty", "--console", "off",
                             "--disk", f"path={root}", f"path={scratch},num_queues=4"],
        "qemu-q35": ["qemu-system-x86_64", "-M", "q35", "-accel", "kvm", "-cpu", "host", "-smp", "4", "-m", "512M",
                     "-kernel", kernel, "-initrd", initramfs, "-append", CMDLINE,
                     "-drive", f"file={root},if=none,id=d0,format=raw", "-device", "virtio-blk-pci,drive=d0",
                     "-drive", f"file={scratch},if=none,id=d1,format=raw", "-device", "virtio-blk-pci,drive=d1,num-queues=4",
                     "-nodefaults", "-no-user-config", "-nographic", "-serial", "stdio", "-no-reboot"],
    }


def inside(cache, result_path, runs):
    root, scratch = "/run/bench-root.raw", "/run/bench-scratch.raw"
    subprocess.run(["cp", os.path.join(cache, "l2-disk.raw"), root], check=True)
    subprocess.run(["truncate", "-s", "512M", scratch], check=True)
    samples = {name: [] for name in commands(cache, root, scratch)}
    for run in range(runs):
        for name, cmd in commands(cache, root, scratch).items():
            log = os.path.join(os.path.dirname(result_path), f"{name}-{run}.log")
            _, _, _, text = lab.timed(cmd, log, b"L2: bench ")
            line = re.search(r"L2: bench (.*)", text).group(1)
            samples[name].append({k: float(v) for k, v in (f.split("=") for f in line.split())})
    lab.save(result_path, samples)


def main():
    samples = lab.samples(__file__, inside, RUNS, 300 + 200 * RUNS)
    if samples is None:
        return
    med = lab.medians(samples, FIELDS)
    print(f"virtio-blk in the nested lab, {RUNS} interleaved runs each (guest direct I/O, 512 MiB raw disk on tmpfs)")
    for name, m in med.items():
        print(f"  {name:17s} seq write {m['seq_write_mbps']:7.1f} MB/s   seq read {m['seq_read_mbps']:7.1f} MB/s   "
              f"4K random read {m['rand_read_iops']:8.0f} IOPS")
    ch, q = med["cloud-hypervisor"], med["qemu-q35"]
    print("  ratio cloud-hypervisor / QEMU (goal >= 1.0x): " +
          ", ".join(f"{f} {ch[f] / q[f]:.2f}x" for f in FIELDS))


if __name__ == "__main__":
    main()
