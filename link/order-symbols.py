#!/usr/bin/env python3
"""Writes link/hot-symbols.txt, the order lld lays out the VMM's code in
(Package.swift: --symbol-ordering-file): the functions a VM runs, first.

Every VM maps the code it runs from the binary's page cache, and the
kernel maps it 64 KiB (its fault-around window) or a large folio at a
time; scattered over the binary's 5 MiB of text (the Swift runtime and
standard library are most of it), the 0.5 MiB a VM runs had most of the
text mapped in every VM (bench/memory.py: the binary's code). Laid out
together, what a VM maps is little more than what it runs.

Which functions run is traced, not guessed (link/trace-functions.c: a
one-shot breakpoint on each function's entry) in the launches a VM has:
  - on this host: a tiny guest with a virtio disk, net (as root), console,
    rng and COM1, serving the API (vm.info, vm.counters, vmm.ping) until
    vmm.shutdown;
  - in the nested lab (ORDER_LAB=0 skips it): the lab's Linux guest with a
    virtio disk, net and the API, booted to its idle loop, asked for
    vm.info and powered off by the ACPI power button.
Functions are listed in the order they first ran (start-up code together),
host run first. Run again after a toolchain or a large code change;
BinaryLinkTests.hotFunctionsFirst fails when the list no longer names the
binary's functions.

    link/order-symbols.py
"""
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, ".build", "order")
VMM = os.path.join(ROOT, ".build", "release", "cloud-hypervisor")
TRACER = os.path.join(OUT, "trace-functions")
ORDER = os.path.join(ROOT, "link", "hot-symbols.txt")


def text_functions(binary):
    """{link-time address: [names]} of the functions in the binary's .text."""
    start = size = None
    for line in subprocess.run(["readelf", "-S", "--wide", binary], capture_output=True, text=True, check=True).stdout.splitlines():
        fields = line.replace("[ ", "[").split()
        if len(fields) > 5 and fields[1] == ".text":
            start, size = int(fields[3], 16), int(fields[5], 16)
    functions = {}
    for line in subprocess.run(["nm", "--defined-only", binary], capture_output=True, text=True, check=True).stdout.splitlines():
        fields = line.split(maxsplit=2)
        if len(fields) == 3 and fields[1] in "tTwW":
            address = int(fields[0], 16)
            if start <= address < start + size:
                functions.setdefault(address, []).append(fields[2])
    return functions


def api(socket, method, path):
    subprocess.run(["curl", "-s", "-X", method, "--unix-socket", socket, f"http://localhost/api/v1/{path}"],
                   capture_output=True, timeout=30)


def traced(hits, entries, command, until, exercise, netns=False):
    """Runs `command` under the tracer until its console prints `until`,
    then `exercise()`, which ends the VM; waits for the end. With `netns`
    in a network namespace of its own (its tap's)."""
    unshare = ["unshare", "-n", "--"] if netns else []
    proc = subprocess.Popen(unshare + [TRACER, hits, entries] + command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    try:
        for line in proc.stdout:
            if until in line:
                break
        else:
            sys.exit(f"order: {command[0]} ended before {until!r}")
        exercise()
        proc.wait(timeout=120)
    finally:
        proc.kill()
        proc.wait()


def vm_devices(work, net):
    """A production launch's devices, in `work`: (API socket, arguments)."""
    disk = os.path.join(work, "disk.raw")
    with open(disk, "wb") as f:
        f.truncate(64 << 20)
    socket = os.path.join(work, "api.sock")
    return socket, ["--disk", f"path={disk}"] + (["--net", "tap="] if net else []) + ["--api-socket", socket]


def host_run(entries, hits):
    spin = os.path.join(OUT, "spin")
    subprocess.run(["scripts/build-guest.sh", "spin", spin], check=True, cwd=ROOT)
    net = os.getuid() == 0 and os.access("/dev/net/tun", os.R_OK | os.W_OK)
    socket, devices = vm_devices(tempfile.mkdtemp(prefix="order-"), net)
    command = [VMM, "--kernel", spin, "--memory", "size=64M", "--serial", "tty", "--console", "null"] + devices

    def exercise():
        for path in ("vm.info", "vm.counters", "vmm.ping"):
            api(socket, "GET", path)
        api(socket, "PUT", "vmm.shutdown")
    traced(hits, entries, command, b"spinning", exercise, netns=net)


def lab_inside(cache, entries, hits):
    """In L1: the lab's Linux guest, as a production launch has it."""
    socket, devices = vm_devices(tempfile.mkdtemp(prefix="order-", dir="/run"), True)
    command = [VMM, "--kernel", os.path.join(cache, "l2-vmlinux"), "--initramfs", os.path.join(cache, "l2-initramfs.cpio"),
               "--cmdline", "console=ttyS0 panic=-1 quiet l2.action=api", "--cpus", "1", "--memory", "size=256M",
               "--serial", "tty", "--console", "off"] + devices

    def exercise():
        time.sleep(2)
        api(socket, "GET", "vm.info")
        api(socket, "PUT", "vm.power-button")
    traced(hits, entries, command, b"L2: tick 3 ", exercise, netns=True)


def lab_run(entries, hits):
    """The lab half, run in L1; L1 writes only to the run's out directory."""
    cache = subprocess.run(["lab/setup.sh"], check=True, cwd=ROOT, capture_output=True, text=True).stdout.strip()
    out = tempfile.mkdtemp(prefix="order-lab-")
    inside = os.path.join(out, "hits.txt")
    subprocess.run([os.path.join(ROOT, "lab/run.sh"), "--out", out, "--timeout", "900", "--",
                    f"python3 {os.path.abspath(__file__)} --inside {cache} {entries} {inside}"],
                   cwd=ROOT, stdout=subprocess.DEVNULL)
    if not os.path.exists(inside):
        sys.exit(f"order: the lab run traced nothing, see {out}/console.log")
    os.replace(inside, hits)


def main():
    if len(sys.argv) == 5 and sys.argv[1] == "--inside":
        lab_inside(*sys.argv[2:])
        return
    subprocess.run(["scripts/install-deps.sh"], check=True, cwd=ROOT)
    subprocess.run(["swift", "build", "-c", "release", "--static-swift-stdlib"], check=True, cwd=ROOT)
    os.makedirs(OUT, exist_ok=True)
    subprocess.run(["gcc", "-O2", "-Wall", "-o", TRACER, "link/trace-functions.c"], check=True, cwd=ROOT)
    functions = text_functions(os.path.realpath(VMM))
    entries = os.path.join(OUT, "entries.txt")
    with open(entries, "w") as f:
        f.writelines(f"{address:x}\n" for address in sorted(functions))
    runs = [os.path.join(OUT, "hits-host.txt")]
    host_run(entries, runs[0])
    if os.environ.get("ORDER_LAB", "1") != "0":
        runs.append(os.path.join(OUT, "hits-lab.txt"))
        lab_run(entries, runs[1])
    order, seen = [], set()
    for hits in runs:
        for line in open(hits):
            address = int(line, 16)
            if address not in seen:
                seen.add(address)
                order.append(address)
    with open(ORDER, "w") as f:
        f.write("# Written by link/order-symbols.py: the functions a VM runs, in the order\n"
                "# they first ran. Package.swift hands it to lld (--symbol-ordering-file).\n")
        for address in order:
            f.writelines(name + "\n" for name in functions[address])
    print(f"order: {len(order)} of {len(functions)} functions ran ({', '.join(os.path.basename(r) for r in runs)}); "
          f"wrote {os.path.relpath(ORDER, ROOT)}")


if __name__ == "__main__":
    main()
