"""Shared plumbing for the benchmarks that boot Linux in the nested lab:
prepare the lab and the release build, run one script inside L1, and time
a VMM process against a console marker. Imported by every benchmark that
runs in the lab; their --inside mode runs in L1 (`samples`)."""
import json
import mmap
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VMM = os.path.join(ROOT, ".build/release/cloud-hypervisor")
TIMEOUT = 300


def prepare():
    """Installs, sets up the lab and builds; returns the lab cache."""
    subprocess.run(["scripts/install-deps.sh"], check=True, cwd=ROOT)
    cache = subprocess.run(["lab/setup.sh"], check=True, cwd=ROOT, capture_output=True, text=True).stdout.strip()
    subprocess.run(["swift", "build", "-c", "release", "--static-swift-stdlib"], check=True, cwd=ROOT)
    return cache


# L1's CPUs: 1 by default; BENCH_L1_CPUS=2 gives it both of a 2-core host,
# to tell a scheduling effect between a VMM's threads from a per-packet cost.
L1_CPUS = int(os.environ.get("BENCH_L1_CPUS", "1"))


def samples(script, inside, runs, budget):
    """A lab benchmark's two halves. Run as `script --inside CACHE RESULT
    RUNS` (in L1) it calls inside(CACHE, RESULT, RUNS) and returns None; run
    on the host it prepares the lab, runs itself in L1 within `budget`
    seconds (per L1 CPU: a 2-CPU L1 is slower) and returns the samples."""
    if len(sys.argv) == 5 and sys.argv[1] == "--inside":
        inside(sys.argv[2], sys.argv[3], int(sys.argv[4]))
        return None
    cache = prepare()
    # An L1 that ended early (a 2-CPU L1 can hang or panic in its own
    # kernel) is booted again for the rounds still missing, a few times.
    merged, outs = {}, []
    for _ in range(runs):
        result, out = run_inside(script, cache, runs - rounds(merged), budget * L1_CPUS)
        outs.append(out)
        for key, values in result.items():
            merged.setdefault(key, []).extend(values)
        if rounds(merged) >= runs:
            break
    print(f"(consoles of each run in {', '.join(outs)})")
    if not merged:
        sys.exit("bench: no lab run finished a round")
    if rounds(merged) < runs:
        print(f"bench: {rounds(merged)} of the {runs} rounds asked for; the figures below are theirs")
    return merged


def rounds(samples):
    """How many interleaved rounds `samples` holds for every VMM."""
    return min((len(v) for v in samples.values()), default=0)


def medians(samples, fields):
    """{VMM: [run: {field: value}]} → {VMM: {field: median over the runs}}."""
    return {name: {f: statistics.median(r[f] for r in runs) for f in fields} for name, runs in samples.items()}


def run_inside(script, cache, runs, budget):
    """Runs `script --inside CACHE RESULT RUNS` in L1; returns (results, out dir).
    The inside half saves after each interleaved round, so an L1 that
    ends early (a 2-CPU L1 can hang) still gives the rounds it finished."""
    out = tempfile.mkdtemp(prefix="bench-lab-")
    result = os.path.join(out, "result.json")
    status = subprocess.run([os.path.join(ROOT, "lab/run.sh"), "--out", out, "--timeout", str(budget), "--cpus", str(L1_CPUS),
                             "--", f"python3 {os.path.abspath(script)} --inside {cache} {result} {runs}"],
                            cwd=ROOT, stdout=subprocess.DEVNULL).returncode
    if not os.path.exists(result):
        print(f"bench: the lab run ended ({status}) before a round was done, see {out}/console.log")
        return {}, out
    samples = json.load(open(result))
    if status != 0 or rounds(samples) < runs:
        print(f"bench: the lab run ended early ({status}): {rounds(samples)} of {runs} rounds, see {out}/console.log")
    return samples, out


def save(result_path, samples):
    with open(result_path, "w") as f:
        json.dump(samples, f)


def settle():
    """Each boot starts from the same L1: its page cache dropped, its free
    memory written once, then compacted (so every guest finds huge pages
    for its RAM: without it, later boots of a run were up to 3x slower
    than the first). L1's kernel zeroes each page it hands a guest; the first
    write to a page of L1's RAM that an earlier guest used is many times
    slower under this lab's emulation than a later one (a perf profile of
    a slow Debian boot in L1: 54% of the samples in that zeroing, against
    1% in a fresh L1). A boot's time then depended on which pages it got:
    the vCPU's system time ranged 1.1-30 s between identical boots under
    either VMM. Writing most of the free memory here, unmeasured, leaves
    none of that for the boot (three boots: 1.15-1.19 s)."""
    def knob(name, value):
        with open(f"/proc/sys/vm/{name}", "w") as f:
            f.write(value)
    subprocess.run(["sync"])
    knob("drop_caches", "3")
    available = next(int(line.split()[1]) for line in open("/proc/meminfo") if line.startswith("MemAvailable:")) << 10
    size = max(available - (512 << 20), 0) & ~((2 << 20) - 1)
    if size:
        ram = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
        ram.madvise(mmap.MADV_HUGEPAGE)
        for offset in range(0, size, 4096):
            ram[offset] = 1
        ram.close()
    knob("compact_memory", "1")


def cpu_times(pid):
    """The user and system CPU seconds of the process `pid`, all its threads
    (under KVM a vCPU's time in the guest counts as user time; system time
    is L1's kernel working for it: exits, faults on guest RAM)."""
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return {"user": int(fields[11]) / ticks, "sys": int(fields[12]) / ticks}


def timed(cmd, log_path, marker, cpu=None):
    """Runs cmd to its end: seconds to the first console line holding
    `marker`, seconds to the process's exit, peak RSS (KiB, GNU time) and
    the console text. Fails the benchmark on a non-zero exit. A dict given
    as `cpu` gets the command's CPU times (cpu_times) when the marker shows."""
    rss_path = log_path + ".rss"
    with open(log_path, "wb") as log:
        start = time.perf_counter()
        proc = subprocess.Popen(["/usr/bin/time", "-f", "%M", "-o", rss_path] + cmd,
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        watchdog = threading.Timer(TIMEOUT, proc.kill)
        watchdog.start()
        first = None
        for line in proc.stdout:
            log.write(line)
            log.flush()
            if first is None and marker in line:
                first = time.perf_counter() - start
                if cpu is not None:
                    # GNU time's one child is the command.
                    child = open(f"/proc/{proc.pid}/task/{proc.pid}/children").read().split()
                    cpu.update(cpu_times(int(child[0])) if child else {})
        status = proc.wait()
        total = time.perf_counter() - start
        watchdog.cancel()
    text = open(log_path, "rb").read().decode(errors="replace")
    if status != 0 or first is None:
        sys.exit(f"bench: {cmd[0]} exited {status} (killed after {TIMEOUT} s?), see {log_path}:\n{text[-2000:]}")
    return first, total, int(open(rss_path).read().split()[-1]), text


class KVMStats:
    """The KVM statistics of the VM running in L1 (debugfs: a directory per
    VM, its vCPUs' counters summed), sampled every half second while in a
    `with` block; `values` holds the last sample, a whole run's counts up
    to its last half second: exits by reason, halts, injected interrupts."""
    ROOT = "/sys/kernel/debug/kvm"
    FIELDS = ("exits", "io_exits", "mmio_exits", "halt_exits", "irq_exits", "irq_window_exits", "signal_exits",
              "request_irq_exits", "irq_injections", "halt_successful_poll", "halt_wakeup", "pf_taken", "insn_emulation")

    def __init__(self):
        self.values = {}
        self._stop = threading.Event()

    @classmethod
    def read(cls):
        """The counters of the one VM in L1 now; None while there is none."""
        if not os.path.isdir(cls.ROOT):
            subprocess.run(["mount", "-t", "debugfs", "debugfs", "/sys/kernel/debug"], stderr=subprocess.DEVNULL)
        for vm in (d for d in os.listdir(cls.ROOT) if "-" in d):
            try:
                return {f: int(open(os.path.join(cls.ROOT, vm, f)).read()) for f in cls.FIELDS}
            except OSError:
                continue
        return None

    def _run(self):
        while not self._stop.wait(0.5):
            sample = self.read()
            if sample:
                self.values = sample

    def __enter__(self):
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
