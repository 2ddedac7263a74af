#!/usr/bin/env python3
"""VFIO hotplug: cloud-hypervisor's vm.add-device against QEMU's
device_add vfio-pci over QMP, in the same nested-lab run.

Inside L1, each VMM boots the same initramfs-only Linux guest (2 vCPUs,
512M) twice per round, as two kinds of guest:
- uevent: the guest learns of the device as a distribution's udev does,
  from the kernel's uevent ("L2: uevent edu added": the kernel has
  enumerated it), then uses it (the edu test tool). Nothing runs in the
  guest meanwhile. This is the figure the issue's goal is read on.
- poll: the API scenario's guest, whose shell prints a line every 0.2 s
  ("L2: edu devices=1" once sysfs has it), a fork-heavy loop that keeps a
  vCPU busy most of the time under L1's emulation.
Once the guest is up, one of L1's edu devices is hot-added
(cloud-hypervisor: PUT vm.add-device on its API socket, ACPI PCI hotplug;
QEMU -M q35: QMP device_add into a pcie-root-port, native PCIe hotplug) and
timed from the request to the guest's line about it. Then each VMM is
stopped through its API (vmm.shutdown, QMP quit). Interleaved runs after
one unmeasured hot-add each; medians and the ratios, and when each
request was answered.

Where the time goes: both VMMs pin and map all of guest RAM for the
device's DMA at its first hot-add (512 MiB, most of it never touched, so
zeroed as it is pinned: 1.5 s of L1's CPU here). QEMU does it holding its
big lock, which stops the guest's vCPUs at their next exit that needs it,
so the map has L1 to itself; this VMM's guest runs on meanwhile (as under
Cloud Hypervisor: a large guest's map takes many seconds, too long to
stop it). On a 1-CPU L1 the poll guest's loop then takes most of the CPU
the map needs (a perf profile in L1: 60% of the samples in the guest
during this VMM's request, 4% during QEMU's); the uevent guest leaves it
to the map. BENCH_L1_CPUS=2 gives the map a CPU of its own either way.

    bench/vfio_hotplug.py
    BENCH_RUNS=5 bench/vfio_hotplug.py
"""
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lab  # noqa: E402

RUNS = int(os.environ.get("BENCH_RUNS", "3"))
# guest kind: (l2.action, its line once it is up, its line once it has the device)
GUESTS = {
    "uevent": ("uevent", b"L2: uevent listening", b"L2: uevent edu added"),
    "poll": ("api", b"L2: tick", b"L2: edu devices=1"),
}


def edu():
    for bdf in sorted(os.listdir("/sys/bus/pci/devices")):
        ids = tuple(open(f"/sys/bus/pci/devices/{bdf}/{f}").read().strip() for f in ("vendor", "device"))
        driver = os.path.basename(os.readlink(f"/sys/bus/pci/devices/{bdf}/driver")) \
            if os.path.exists(f"/sys/bus/pci/devices/{bdf}/driver") else ""
        if ids == ("0x1234", "0x11e8") and driver == "vfio-pci":
            return bdf
    sys.exit("bench: no edu device bound to vfio-pci in L1")


def connect(path):
    for _ in range(300):
        try:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect(path)
            return s
        except OSError:
            time.sleep(0.05)
    sys.exit(f"bench: nothing listens on {path}")


def http(path, method, endpoint, body=b""):
    s = connect(path)
    s.sendall(b"%s /api/v1/%s HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
              b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (method.encode(), endpoint.encode(), len(body), body))
    answer = b""
    while chunk := s.recv(65536):
        answer += chunk
    s.close()
    return answer


def qmp(path, *commands):
    s = connect(path)
    f = s.makefile("rwb")
    f.readline()  # greeting
    for command in ({"execute": "qmp_capabilities"},) + commands:
        f.write(json.dumps(command).encode() + b"\n")
        f.flush()
        while True:
            reply = json.loads(f.readline())
            if "return" in reply or "error" in reply:
                break
        if "error" in reply:
            sys.exit(f"bench: QMP {command}: {reply['error']}")
    s.close()


class Console:
    """A VMM's console, with the time each marker first showed."""

    def __init__(self, proc, log, markers):
        self.seen = {}
        self.markers = markers
        self.lock = threading.Condition()
        threading.Thread(target=self.read, args=(proc, log), daemon=True).start()

    def read(self, proc, log):
        with open(log, "wb") as out:
            for line in proc.stdout:
                out.write(line)
                with self.lock:
                    for marker in self.markers:
                        if marker in line and marker not in self.seen:
                            self.seen[marker] = time.perf_counter()
                    self.lock.notify_all()

    def wait(self, marker, timeout=lab.TIMEOUT):
        with self.lock:
            self.lock.wait_for(lambda: marker in self.seen, timeout)
        if marker not in self.seen:
            sys.exit(f"bench: no {marker!r} on the console")
        return self.seen[marker]


def one(name, guest, cache, work, log):
    action, up, probed_marker = GUESTS[guest]
    cmdline = f"console=ttyS0 panic=-1 quiet l2.action={action}"
    kernel, initramfs = os.path.join(cache, "l2-vmlinux"), os.path.join(cache, "l2-initramfs.cpio")
    device = edu()
    sock = os.path.join(work, f"{name}.sock")
    if name == "cloud-hypervisor":
        cmd = [lab.VMM, "--api-socket", sock, "--kernel", kernel, "--initramfs", initramfs, "--cmdline", cmdline,
               "--cpus", "2", "--memory", "size=512M", "--serial", "tty", "--console", "off"]
    else:
        cmd = ["qemu-system-x86_64", "-M", "q35", "-accel", "kvm", "-cpu", "host", "-smp", "2", "-m", "512M",
               "-kernel", kernel, "-initrd", initramfs, "-append", cmdline,
               "-device", "pcie-root-port,id=rp1,bus=pcie.0,chassis=1",
               "-qmp", f"unix:{sock},server=on,wait=off",
               "-nodefaults", "-no-user-config", "-nographic", "-serial", "stdio", "-no-reboot"]
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    console = Console(proc, log, (up, probed_marker))
    try:
        console.wait(up)
        start = time.perf_counter()
        if name == "cloud-hypervisor":
            answer = http(sock, "PUT", "vm.add-device", json.dumps({"path": f"/sys/bus/pci/devices/{device}/"}).encode())
            if b" 200 " not in answer.split(b"\r\n")[0]:
                sys.exit(f"bench: vm.add-device: {answer!r}")
        else:
            qmp(sock, {"execute": "device_add", "arguments": {"driver": "vfio-pci", "host": device, "bus": "rp1", "id": "edu0"}})
        answered = time.perf_counter() - start
        probed = console.wait(probed_marker) - start
        if name == "cloud-hypervisor":
            http(sock, "PUT", "vmm.shutdown")
        else:
            qmp(sock, {"execute": "quit"})
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return {"answered": answered, "probed": probed}


def inside(cache, result_path, runs):
    work = tempfile.mkdtemp(prefix="hotplug-", dir="/run")
    samples = {}
    # A first hot-add in a fresh L1 pays for L1 itself (its first huge pages
    # for a guest to pin, vfio's first open): one of each, not counted.
    for name in ("cloud-hypervisor", "qemu-q35"):
        one(name, "uevent", cache, work, os.path.join(os.path.dirname(result_path), f"{name}-warmup.log"))
    for run in range(runs):
        for name in ("cloud-hypervisor", "qemu-q35"):
            sample = {}
            for guest in GUESTS:
                log = os.path.join(os.path.dirname(result_path), f"{name}-{guest}-{run}.log")
                for field, value in one(name, guest, cache, work, log).items():
                    sample[f"{guest} {field}"] = value
            samples.setdefault(name, []).append(sample)
        lab.save(result_path, samples)


def main():
    samples = lab.samples(__file__, inside, RUNS, 300 + 400 * RUNS)
    if samples is None:
        return
    print(f"VFIO hotplug of an edu device into a running Linux guest, {RUNS} interleaved runs each, L1 on {lab.L1_CPUS} CPU(s):")
    fields = [f"{guest} {field}" for guest in GUESTS for field in ("answered", "probed")]
    med = lab.medians(samples, fields)
    for guest in GUESTS:
        print(f"  {guest} guest:")
        for name, runs in samples.items():
            each = ", ".join(f"{r[guest + ' probed']:.2f}" for r in runs)
            print(f"    {name:17s} request to the guest's use: median {med[name][guest + ' probed']:6.2f} s  (runs: {each}); "
                  f"the request answered after {med[name][guest + ' answered']:.2f} s")
        ratio = med["cloud-hypervisor"][guest + " probed"] / med["qemu-q35"][guest + " probed"]
        goal = " (goal <= 1.0x)" if guest == "uevent" else ""
        print(f"    ratio cloud-hypervisor / QEMU: {ratio:.2f}x{goal}")


if __name__ == "__main__":
    main()
