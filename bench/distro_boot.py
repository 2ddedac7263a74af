#!/usr/bin/env python3
"""A real distribution's boot: Debian 12 with systemd from a virtio disk,
cloud-hypervisor against QEMU -M q35 in the same nested-lab run.

The image (lab/debian.sh: mmdebstrap, Debian's cloud kernel and its own
initramfs-tools initrd, root on /dev/vda1) is booted by both VMMs with the
same kernel, initrd, command line, RAM and vCPUs, 1 and then 4 vCPUs,
interleaved. Each VMM boots its own copy of the disk (a first boot per
copy, not measured, does what a first boot does once: machine id, random
seed). Measured per boot: the guest's uptime when systemd has no start-up
job left (`systemctl is-system-running --wait`; the figure a user waits
for) and launch to the VMM's exit after the guest's power-off. Prints
medians, ratios (cloud-hypervisor / QEMU; goal <= 0.8x) and, from the last
boot of each, systemd-analyze's split and slowest units, so a gap shows
where it is.

    bench/distro_boot.py
    BENCH_RUNS=5 bench/distro_boot.py
"""
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lab  # noqa: E402

RUNS = int(os.environ.get("BENCH_RUNS", "3"))
MARKER = b"LAB-BOOT: "
CMDLINE = "console=ttyS0 root=/dev/vda1 rw quiet panic=-1"
MEMORY = "1024M"
SHAPES = (1, 4)


def commands(image, disk, cpus):
    kernel, initrd = os.path.join(image, "vmlinuz"), os.path.join(image, "initrd.img")
    return {
        "cloud-hypervisor": [lab.VMM, "--kernel", kernel, "--initramfs", initrd, "--disk", f"path={disk['cloud-hypervisor']}",
                             "--cmdline", CMDLINE, "--cpus", str(cpus), "--memory", f"size={MEMORY}",
                             "--serial", "tty", "--console", "off"],
        "qemu-q35": ["qemu-system-x86_64", "-M", "q35", "-accel", "kvm", "-cpu", "host", "-smp", str(cpus), "-m", MEMORY,
                     "-kernel", kernel, "-initrd", initrd, "-append", CMDLINE,
                     "-drive", f"file={disk['qemu-q35']},if=none,id=root,format=raw", "-device", "virtio-blk-pci,drive=root",
                     "-nodefaults", "-no-user-config", "-nographic", "-serial", "stdio", "-no-reboot"],
    }


def uptime(text):
    m = re.search(r"LAB-BOOT: ([0-9.]+)", text)
    return float(m.group(1))


def disk_stats(text):
    """The root disk's requests and the guest's mean wait for each kind, from
    /sys/block/vda/stat at the end of the boot (Documentation/block/stat.rst)."""
    m = re.search(r"LAB-DISK: ([0-9 ]+)", text)
    f = [int(x) for x in m.group(1).split()] if m else []
    if len(f) < 17:
        return {"reads": 0, "read_ms": 0.0, "writes": 0, "write_ms": 0.0, "flushes": 0, "flush_ms": 0.0}
    return {"reads": f[0], "read_ms": f[3] / max(f[0], 1), "writes": f[4], "write_ms": f[7] / max(f[4], 1),
            "flushes": f[15], "flush_ms": f[16] / max(f[15], 1)}


def inside(cache, result_path, runs):
    image = os.path.join(cache, "debian12")
    out = os.path.dirname(result_path)
    disk = {name: f"/run/bench-debian-{name}.raw" for name in ("cloud-hypervisor", "qemu-q35")}
    for name, path in disk.items():
        subprocess.run(["cp", "--sparse=always", os.path.join(image, "disk.raw"), path], check=True)
    samples = {f"{name} {cpus}": [] for cpus in SHAPES for name in disk}
    for name, cmd in commands(image, disk, 1).items():
        lab.timed(cmd, os.path.join(out, f"{name}-first.log"), MARKER)
    for run in range(runs):
        for cpus in SHAPES:
            for name, cmd in commands(image, disk, cpus).items():
                log = os.path.join(out, f"{name}-{cpus}cpu-{run}.log")
                lab.settle()
                cpu = {}
                with lab.KVMStats() as stats:
                    _, total, rss, text = lab.timed(cmd, log, MARKER, cpu)
                # A line may follow the serial getty's prompt ("debian-l2 login: LAB-...").
                analysis = [m.group(1) for m in re.finditer(r"LAB-(?:ANALYZE|BLAME): (.*)", text)]
                samples[f"{name} {cpus}"].append({"units_up": uptime(text), "power_off": total, "rss": rss,
                                                  "analysis": analysis, **disk_stats(text),
                                                  "cpu_user": cpu.get("user", 0.0), "cpu_sys": cpu.get("sys", 0.0),
                                                  **{f: stats.values.get(f, 0) for f in lab.KVMStats.FIELDS}})
        lab.save(result_path, samples)


def main():
    if sys.argv[1:2] != ["--inside"]:
        # Built on the host: L1 sees the host's files read-only.
        subprocess.run([os.path.join(lab.ROOT, "lab/debian.sh")], check=True, stdout=subprocess.DEVNULL)
    samples = lab.samples(__file__, inside, RUNS, 600 + 300 * RUNS)
    if samples is None:
        return
    medians = lab.medians(samples, ("units_up", "power_off"))
    print(f"Debian 12 (systemd) boot from a virtio disk, {RUNS} interleaved boots each, {MEMORY} (nested lab)")
    for key, m in medians.items():
        print(f"  {key:20s} vCPUs: units up at {m['units_up']:6.2f} s (guest uptime)   launch to power-off {m['power_off']:6.2f} s")
    for cpus in SHAPES:
        ch, qemu = medians[f"cloud-hypervisor {cpus}"], medians[f"qemu-q35 {cpus}"]
        print(f"  ratio cloud-hypervisor / QEMU q35, {cpus} vCPU(s): units up {ch['units_up'] / qemu['units_up']:.2f}x, "
              f"power-off {ch['power_off'] / qemu['power_off']:.2f}x (goal <= 0.8x)")
    print("  the VMM's CPU time up to the units-up line, each boot: user (the guest, and a VMM's own user space) + system")
    print("  (L1's kernel for it: exits, guest RAM's faults and zeroing; lab.settle says why it must stay small):")
    for key, runs in samples.items():
        each = ", ".join(f"{r.get('cpu_user', 0):.1f}+{r.get('cpu_sys', 0):.1f}" for r in runs)
        print(f"    {key:20s} {each}")
    io = lab.medians(samples, ("reads", "read_ms", "writes", "write_ms", "flushes", "flush_ms"))
    print("  the root disk as the guest saw it (medians: requests, mean ms each):")
    for key, d in io.items():
        print(f"    {key:20s} reads {int(d['reads']):6d} at {d['read_ms']:6.2f} ms   writes {int(d['writes']):6d} at "
              f"{d['write_ms']:6.2f} ms   flushes {int(d['flushes']):5d} at {d['flush_ms']:6.2f} ms")
    counts = lab.medians(samples, lab.KVMStats.FIELDS)
    print("  KVM exits and events per boot (medians; L1's debugfs):")
    print(f"    {'':20s}" + "".join(f"{key:>22s}" for key in counts))
    for f in lab.KVMStats.FIELDS:
        print(f"    {f:20s}" + "".join(f"{int(c[f]):>22d}" for c in counts.values()))
    for key, runs in samples.items():
        print(f"  {key} vCPUs, last boot:")
        for line in runs[-1]["analysis"]:
            print(f"    {line}")


if __name__ == "__main__":
    main()
