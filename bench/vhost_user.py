#!/usr/bin/env python3
"""vhost-user devices against QEMU's on the same backends: the frontend
should add nothing, so the goal is >= 1.0x.

Inside the nested lab's L1, each VMM boots the lab's L2 kernel (4 vCPUs,
512M of shared memfd RAM):
- vhost-user-blk on qemu-storage-daemon exporting a 512 MiB raw scratch
  file on L1's tmpfs (4 queues): the guest's bench/guest/blkbench, direct
  I/O, sequential 1 MiB writes and reads (MB/s), 4 KiB random reads from 4
  threads (IOPS); against QEMU's vhost-user-blk-pci.
- virtio-fs on virtiofsd (cache=none) sharing a tmpfs directory: the
  guest's sequential 64 MiB write (fsync) and read (MB/s), and a
  small-file loop (create, stat, remove; operations per second); against
  QEMU's vhost-user-fs-pci.
A new backend for every run; runs interleaved; prints medians and ratios.

    bench/vhost_user.py
    BENCH_RUNS=5 bench/vhost_user.py
"""
import os
import re
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lab  # noqa: E402

RUNS = int(os.environ.get("BENCH_RUNS", "3"))
BLK_FIELDS = ("seq_write_mbps", "seq_read_mbps", "rand_read_iops")
FS_FIELDS = ("fs_write_mbps", "fs_read_mbps", "fs_meta_ops")
WORK = "/run/bench-vhost"


def qemu(kernel, initramfs, cmdline, device):
    return ["qemu-system-x86_64", "-M", "q35", "-accel", "kvm", "-cpu", "host", "-smp", "4", "-m", "512M",
            "-object", "memory-backend-memfd,id=mem,size=512M,share=on", "-numa", "node,memdev=mem",
            "-kernel", kernel, "-initrd", initramfs, "-append", cmdline,
            "-chardev", f"socket,id=vu,path={WORK}/vu.sock"] + device + \
           ["-nodefaults", "-no-user-config", "-nographic", "-serial", "stdio", "-no-reboot"]


def commands(cache):
    kernel = os.path.join(cache, "l2-vmlinux")
    initramfs = os.path.join(cache, "l2-initramfs.cpio")
    ch = [lab.VMM, "--kernel", kernel, "--initramfs", initramfs, "--cpus", "4", "--memory", "size=512M,shared=on",
          "--serial", "tty", "--console", "off"]
    blk = "console=ttyS0 quiet panic=-1 l2.action=blkbench"
    fs = "console=ttyS0 quiet panic=-1 l2.action=fsbench"
    return {
        "blk": {
            "cloud-hypervisor": ch + ["--cmdline", blk, "--disk", f"path={WORK}/root.raw",
                                      f"vhost_user=on,socket={WORK}/vu.sock,num_queues=4"],
            "qemu-q35": qemu(kernel, initramfs, blk, ["-drive", f"file={WORK}/root.raw,if=none,id=d0,format=raw",
                                                      "-device", "virtio-blk-pci,drive=d0",
                                                      "-device", "vhost-user-blk-pci,chardev=vu,num-queues=4"]),
        },
        "fs": {
            "cloud-hypervisor": ch + ["--cmdline", fs, "--fs", f"tag=kataShared,socket={WORK}/vu.sock"],
            "qemu-q35": qemu(kernel, initramfs, fs, ["-device", "vhost-user-fs-pci,chardev=vu,tag=kataShared"]),
        },
    }


def backend(kind):
    """A fresh backend on WORK/vu.sock, ready to take its one frontend."""
    sock = f"{WORK}/vu.sock"
    if os.path.exists(sock):
        os.unlink(sock)
    if kind == "blk":
        subprocess.run(["truncate", "-s", "512M", f"{WORK}/scratch.raw"], check=True)
        proc = subprocess.Popen(["qemu-storage-daemon", "--blockdev", f"driver=file,node-name=s,filename={WORK}/scratch.raw",
                                 "--export", f"type=vhost-user-blk,id=e,node-name=s,addr.type=unix,addr.path={sock},"
                                 "writable=on,num-queues=4"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    else:
        shutil.rmtree(f"{WORK}/share", ignore_errors=True)
        os.makedirs(f"{WORK}/share")
        proc = subprocess.Popen(["/usr/lib/qemu/virtiofsd", f"--socket-path={sock}", "-o", f"source={WORK}/share",
                                 "-o", "cache=none", "-o", "sandbox=chroot"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(100):
        if os.path.exists(sock):
            break
        time.sleep(0.1)
    return proc


def inside(cache, result_path, runs):
    os.makedirs(WORK, exist_ok=True)
    subprocess.run(["cp", os.path.join(cache, "l2-disk.raw"), f"{WORK}/root.raw"], check=True)
    samples = {kind: {name: [] for name in cmds} for kind, cmds in commands(cache).items()}
    for run in range(runs):
        for kind, cmds in commands(cache).items():
            for name, cmd in cmds.items():
                proc = backend(kind)
                log = os.path.join(os.path.dirname(result_path), f"{kind}-{name}-{run}.log")
                try:
                    _, _, _, text = lab.timed(cmd, log, b"L2: bench ")
                finally:
                    proc.terminate()
                    proc.wait()
                line = re.search(r"L2: bench (.*)", text).group(1)
                samples[kind][name].append({k: float(v) for k, v in (f.split("=") for f in line.split())})
    lab.save(result_path, samples)


def main():
    samples = lab.samples(__file__, inside, RUNS, 300 + 400 * RUNS)
    if samples is None:
        return
    for kind, fields, title in (("blk", BLK_FIELDS, "vhost-user-blk on qemu-storage-daemon (guest direct I/O, 512 MiB raw on tmpfs, 4 queues)"),
                                ("fs", FS_FIELDS, "virtio-fs on virtiofsd (cache=none, tmpfs)")):
        med = lab.medians(samples[kind], fields)
        print(f"{title}, {RUNS} interleaved runs each")
        for name, m in med.items():
            print(f"  {name:17s} " + "   ".join(f"{f} {m[f]:9.1f}" for f in fields))
        ch, q = med["cloud-hypervisor"], med["qemu-q35"]
        print("  ratio cloud-hypervisor / QEMU (goal >= 1.0x): " + ", ".join(f"{f} {ch[f] / q[f]:.2f}x" for f in fields))


if __name__ == "__main__":
    main()
