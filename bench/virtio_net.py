#!/usr/bin/env python3
"""virtio-net throughput: cloud-hypervisor against QEMU's virtio-net-pci.

Inside the nested lab's L1, each VMM boots the lab's L2 kernel (4 vCPUs,
512M) on the same tap (192.168.249.1 on L1, .2 in the guest; QEMU
attaches to it with vhost=off, and with vhost=on as the figure to aim at
next). iperf3 runs in the guest as server and in L1 as client: TCP
host->guest and guest->host (MB/s), and 64-byte TCP messages guest->host
(TCP_NODELAY, messages received per second), with what the guest's
driver did per 1,000 of those messages (virtio-net interrupts on its
transmit and receive queues, packets out and in), which tells where a gap
comes from, and the same per MB of TCP guest->host. L1's side of the same
two tests too: KVM's exits by reason and injected interrupts, the tap's
frames, and the thread that moves the frames (this VMM's virtio-net
thread, QEMU's main loop, its vhost worker): CPU time, time runnable but
waiting for a CPU, and sleeps (its wakeups). Runs are interleaved; prints
medians and ratios against QEMU without vhost (goal: >= 1.0x).

    bench/virtio_net.py
    BENCH_RUNS=5 bench/virtio_net.py
    BENCH_L1_CPUS=2 bench/virtio_net.py    # L1 with both of the host's cores
"""
import json
import os
import re
import statistics
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lab  # noqa: E402

RUNS = int(os.environ.get("BENCH_RUNS", "3"))
SECONDS = 5
TAP, GUEST, MAC = "benchtap", "192.168.249.2", "12:34:56:78:90:ab"
CMDLINE = "console=ttyS0 quiet panic=-1 l2.action=iperf l2.iperf=3"
# (name, iperf3 client arguments, what to read from its JSON)
TESTS = [
    ("tcp_host_to_guest_mbps", ["-t", str(SECONDS)], "tcp"),
    ("tcp_guest_to_host_mbps", ["-t", str(SECONDS), "-R"], "tcp"),
    # Small packets: 64-byte writes without Nagle. (A UDP flood measures L1's
    # one CPU shared between the sender's VMM and the receiver, not the device.)
    ("tcp64_guest_to_host_msgs", ["-t", str(SECONDS), "-R", "-N", "-l", "64"], "msgs"),
]


def commands(cache):
    kernel = os.path.join(cache, "l2-vmlinux")
    initramfs = os.path.join(cache, "l2-initramfs.cpio")
    qemu = ["qemu-system-x86_64", "-M", "q35", "-accel", "kvm", "-cpu", "host", "-smp", "4", "-m", "512M",
            "-kernel", kernel, "-initrd", initramfs, "-append", CMDLINE,
            "-nodefaults", "-no-user-config", "-nographic", "-serial", "stdio", "-no-reboot"]
    def qemu_net(vhost):
        return ["-netdev", f"tap,id=n0,ifname={TAP},script=no,downscript=no,vhost={vhost}",
                "-device", f"virtio-net-pci,netdev=n0,mac={MAC}"]
    return {
        "cloud-hypervisor": [lab.VMM, "--kernel", kernel, "--initramfs", initramfs, "--cmdline", CMDLINE,
                             "--cpus", "4", "--memory", "size=512M", "--serial", "tty", "--console", "off",
                             "--net", f"tap={TAP},mac={MAC}"],
        "qemu-q35": qemu + qemu_net("off"),
        "qemu-q35-vhost": qemu + qemu_net("on"),
    }


def threads(pid):
    """Each thread of `pid`: name, state, CPU ticks, system call and where it sleeps."""
    rows = []
    for tid in sorted(os.listdir(f"/proc/{pid}/task"), key=int):
        d = f"/proc/{pid}/task/{tid}"
        try:
            stat = open(f"{d}/stat").read()
            fields = stat[stat.rindex(")") + 2:].split()
            rows.append(f"{open(d + '/comm').read().strip()}/{tid} {fields[0]} ticks={int(fields[11]) + int(fields[12])} "
                        f"syscall={open(d + '/syscall').read().split(' ')[0].strip()} wchan={open(d + '/wchan').read()}")
        except OSError:
            continue
    return rows


def client(args, pid=None):
    """One iperf3 test against the guest's server, retried while it starts;
    on no answer, what the VMM `pid`'s threads were doing, twice 2 s apart."""
    for _ in range(50):
        # L1's root is the host's, read-only: iperf3's scratch file goes to /run.
        # A guest that stops answering (a 2-CPU L1's nested guests can
        # hang) ends this L1's run instead of holding it to its budget;
        # lab.samples boots another for the rounds left.
        try:
            r = subprocess.run(["iperf3", "-c", GUEST, "-J"] + args, capture_output=True, text=True,
                               env=dict(os.environ, TMPDIR="/run"), timeout=SECONDS + 60)
        except subprocess.TimeoutExpired:
            for _ in range(2 if pid else 0):
                print("bench: the VMM's threads: " + "; ".join(threads(pid)), file=sys.stderr)
                time.sleep(2)
            sys.exit(f"bench: iperf3 {' '.join(args)} had no answer after {SECONDS + 60} s")
        if r.returncode == 0 and "error" not in json.loads(r.stdout):
            return json.loads(r.stdout)
        time.sleep(0.3)
    sys.exit(f"bench: iperf3 {' '.join(args)} failed: {r.stdout[-1000:]} {r.stderr[-1000:]}")


def guest_counts(text, test):
    """What the guest counted during test `test` (1-based): interrupts and
    packets, from the l2-init lines around it."""
    values = {}
    for when in ("before", "after"):
        line = re.search(rf"L2: iperf counts {test} {when} (.*)", text).group(1)
        values[when] = {k: int(v) for k, v in (f.split("=") for f in line.split())}
    return {k: values["after"][k] - values["before"][k] for k in values["after"]}


def figure(result, kind):
    end = result["end"]
    received = end["sum_received"]["bits_per_second"] / 8
    return received / 1e6 if kind == "tcp" else received / 64


def frame_mover(pid):
    """The /proc directory of the thread that moves a VMM's frames: this
    VMM's virtio-net thread, QEMU's vhost worker (named for the process: a
    thread of it since Linux 6.4, a kernel thread before) or else QEMU's
    main loop."""
    for tid in os.listdir(f"/proc/{pid}/task"):
        comm = open(f"/proc/{pid}/task/{tid}/comm").read().strip()
        if comm.startswith("virtio-net") or comm == f"vhost-{pid}":
            return f"/proc/{pid}/task/{tid}"
    for other in (p for p in os.listdir("/proc") if p.isdigit()):
        try:
            if open(f"/proc/{other}/comm").read().strip() == f"vhost-{pid}":
                return f"/proc/{other}"
        except OSError:
            continue
    return f"/proc/{pid}/task/{pid}"


KVM_FIELDS = ("exits", "halt_exits", "io_exits", "mmio_exits", "irq_injections")
L1_FIELDS = KVM_FIELDS + ("mover_run_ms", "mover_wait_ms", "mover_sleeps", "tap_frames_in", "tap_frames_out")


def l1_counts(pid):
    """L1's counters of a running VMM: its VM's exits and injected
    interrupts, its frame mover's scheduling (schedstat: ns on a CPU and
    runnable; voluntary switches: sleeps) and the tap's frames (in: from
    the guest)."""
    kvm = lab.KVMStats.read() or {}
    mover = frame_mover(pid)
    run, wait, _ = (int(v) for v in open(f"{mover}/schedstat").read().split())
    sleeps = int(re.search(r"^voluntary_ctxt_switches:\s*(\d+)", open(f"{mover}/status").read(), re.M).group(1))
    tap = {k: int(open(f"/sys/class/net/{TAP}/statistics/{k}").read()) for k in ("rx_packets", "tx_packets")}
    return {**{f: kvm.get(f, 0) for f in KVM_FIELDS}, "mover_run_ms": run / 1e6, "mover_wait_ms": wait / 1e6,
            "mover_sleeps": sleeps, "tap_frames_in": tap["rx_packets"], "tap_frames_out": tap["tx_packets"]}


def one_run(cmd, log_path):
    """Boots, runs every test when the guest's server is up, waits for power-off."""
    figures, seen = {}, []
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        watchdog = threading.Timer(lab.TIMEOUT, proc.kill)
        watchdog.start()
        test, moved = 0, []
        for line in proc.stdout:
            log.write(line)
            log.flush()
            if b"L2: iperf ready" in line and test < len(TESTS):
                name, args, kind = TESTS[test]
                before = l1_counts(proc.pid)
                result = client(args, proc.pid)
                after = l1_counts(proc.pid)
                seen.append({k: after[k] - before[k] for k in after})
                figures[name] = figure(result, kind)
                moved.append(result["end"]["sum_received"]["bytes"])
                test += 1
        status = proc.wait()
        watchdog.cancel()
    if status != 0 or len(figures) != len(TESTS):
        sys.exit(f"bench: {cmd[0]} exited {status} after {len(figures)} tests, see {log_path}")
    # Per 1,000 small messages (the last test) and per MB of TCP guest to
    # host (the second): what the guest's driver did.
    text = open(log_path, errors="replace").read()
    for key, value in {**guest_counts(text, len(TESTS)), **seen[-1]}.items():
        figures["per_kmsg_" + key] = value * 1000 / (moved[-1] / 64)
    stream = [t[0] for t in TESTS].index("tcp_guest_to_host_mbps")
    for key, value in {**guest_counts(text, stream + 1), **seen[stream]}.items():
        figures["per_mb_" + key] = value / (moved[stream] / 1e6)
    return figures


def inside(cache, result_path, runs):
    subprocess.run(["ip", "tuntap", "add", TAP, "mode", "tap"], check=True)
    subprocess.run(["ip", "addr", "add", "192.168.249.1/24", "dev", TAP], check=True)
    subprocess.run(["ip", "link", "set", TAP, "up"], check=True)
    samples = {name: [] for name in commands(cache)}
    for run in range(runs):
        for name, cmd in commands(cache).items():
            log = os.path.join(os.path.dirname(result_path), f"{name}-{run}.log")
            samples[name].append(one_run(cmd, log))
        lab.save(result_path, samples)


def main():
    samples = lab.samples(__file__, inside, RUNS, 300 + 300 * RUNS)
    if samples is None:
        return
    fields = [t[0] for t in TESTS]
    med = lab.medians(samples, fields)
    print(f"virtio-net in the nested lab ({lab.L1_CPUS} L1 CPU(s)), {lab.rounds(samples)} interleaved runs each "
          f"(iperf3, {SECONDS} s per test, one tap)")
    for name, m in med.items():
        print(f"  {name:17s} TCP host->guest {m[fields[0]]:8.1f} MB/s   TCP guest->host {m[fields[1]]:8.1f} MB/s   "
              f"64 B messages guest->host {m[fields[2]]:9.0f}/s")
    counts = ("per_kmsg_tx_irqs", "per_kmsg_rx_irqs", "per_kmsg_tx_packets", "per_kmsg_rx_packets")
    print("  the guest's driver per 1,000 64-byte messages (transmit and receive interrupts, packets out and in):")
    for name, runs in samples.items():
        print(f"  {name:17s} " + "   ".join(f"{c[9:]} {statistics.median(r[c] for r in runs):7.1f}" for c in counts))
    print("  the guest's driver per MB of TCP guest->host (the same counts):")
    for name, runs in samples.items():
        print(f"  {name:17s} " + "   ".join(f"{c[9:]} {statistics.median(r['per_mb_' + c[9:]] for r in runs):7.1f}"
                                          for c in counts))
    for unit in ("kmsg", "mb"):
        print("  L1 per " + ("1,000 64-byte messages" if unit == "kmsg" else "MB of TCP guest->host") +
              ": KVM exits (halts, port I/O, MMIO), injected interrupts; the frame mover's ms on a CPU, ms waiting"
              " for one, sleeps; tap frames in and out:")
        for name, runs in samples.items():
            print(f"  {name:17s} " + " ".join(f"{f} {statistics.median(r[f'per_{unit}_{f}'] for r in runs):.1f}"
                                            for f in L1_FIELDS))
    ch = med["cloud-hypervisor"]
    for base in ("qemu-q35", "qemu-q35-vhost"):
        goal = " (goal >= 1.0x)" if base == "qemu-q35" else " (the figure to aim at next)"
        print(f"  ratio cloud-hypervisor / {base}{goal}: " +
              ", ".join(f"{f} {ch[f] / med[base][f]:.2f}x" for f in fields))


if __name__ == "__main__":
    main()
