#!/usr/bin/env bash
# Runs one shell command inside the lab's L1 (QEMU TCG, q35, intel-iommu,
# two edu devices and an NVMe controller, and behind a PCI bridge a third
# edu sharing its IOMMU group with a virtio-rng: nested KVM) with the host's root read-only at / and prints
# L1's console. Exits with the command's status.
#
#   lab/run.sh [--out DIR] [--timeout SECONDS] [--cpus N] [--qemu-arg ARG]... -- COMMAND
#
# --out: a host directory that is writable inside L1 (the command runs
# there; files it writes come back). --cpus: L1's CPUs (default 1; the
# benchmarks compare shapes). --qemu-arg adds QEMU options, e.g.
# "-device e1000e" for another PCI device.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="" timeout=600 cpus=1 extra=()
while [ $# -gt 0 ]; do
    case "$1" in
        --out) out="$2"; shift 2 ;;
        --timeout) timeout="$2"; shift 2 ;;
        --cpus) cpus="$2"; shift 2 ;;
        --qemu-arg) extra+=("$2"); shift 2 ;;
        --) shift; break ;;
        *) echo "usage: $0 [--out DIR] [--timeout S] [--cpus N] [--qemu-arg ARG]... -- COMMAND" >&2; exit 2 ;;
    esac
done
[ $# -gt 0 ] || { echo "lab: no command given" >&2; exit 2; }
cache="$("$here/setup.sh")"
[ -n "$out" ] || out="$(mktemp -d /tmp/lab-out.XXXXXX)"
mkdir -p "$out"; out="$(cd "$out" && pwd)"
printf '%s\n' "$*" > "$out/command.sh"

console="$out/console.log"
: > "$console"
# all.sh's progress (a scenario per line, done): a new run starts empty, a
# restarted L1 (below) goes on after the last one done.
rm -f "$out/times.txt"
# L1 ticks with a periodic LAPIC timer, not one-shot TSC deadlines: twice a
# full run froze L1 for good right after an L2 kernel started (L1's vCPU
# busy, its timers dead, no task blocked before) — a one-shot interrupt
# lost under TCG while in the nested guest is never re-armed, and an L2 vCPU
# spinning for another (SMP bring-up) then never yields L1's only CPU. A
# periodic tick comes back.
boot_l1() {
    timeout --foreground -k 5 "$((deadline - SECONDS))" qemu-system-x86_64 -accel tcg -M q35 -cpu max -m 4G -smp "$cpus" \
        -device intel-iommu -device edu -device edu \
        -drive "file=$cache/l1-nvme.raw,if=none,id=nvme0,format=raw,readonly=on" -device nvme,serial=labnvme,drive=nvme0 \
        -device pci-bridge,id=labbridge,chassis_nr=1 -device edu,bus=labbridge,addr=1 -device virtio-rng-pci,bus=labbridge,addr=2 \
        -virtfs local,path=/,mount_tag=host,security_model=none,readonly=on,multidevs=remap \
        -virtfs "local,path=$out,mount_tag=out,security_model=none" \
        -kernel "$cache/l1-vmlinuz" -initrd "$cache/l1-initramfs.cpio" \
        -append "console=ttyS0 panic=-1 intel_iommu=on quiet lapic=notscdeadline nohz=off highres=off lab.out=$out" \
        -nographic -no-reboot -monitor none "${extra[@]}" </dev/null 2>&1 | tee -a "$console" | sed -u '/^LAB-EXIT=/d'
    return "${PIPESTATUS[0]}"
}
# If L1 freezes anyway, nothing under $out changes (a live L1 writes its
# console at least every 5 minutes): after 10 minutes it is stopped and
# booted once more, and the scenarios go on from where they stopped.
watch_l1() {
    while sleep 30 </dev/null >/dev/null 2>&1; do
        [ -n "$(find "$out" -type f -mmin -10 | head -1)" ] && continue
        echo "lab: L1 made no progress for 10 minutes (console above): stopping it" | tee -a "$console" >&2
        touch "$out/.stalled"
        pkill -f "lab.out=$out " || true
        sleep 10
        pkill -KILL -f "lab.out=$out " || true
        return
    done
}
deadline=$((SECONDS + timeout))
set +e
for attempt in 1 2; do
    rm -f "$out/.stalled"
    watch_l1 & watcher=$!
    boot_l1; qemu=$?
    # KILL: a parent may have handed this script TERM blocked or ignored.
    kill -KILL "$watcher" 2>/dev/null; wait "$watcher" 2>/dev/null
    # An L1 that ran its command to the end is not booted again, even if it
    # then hung on its way out.
    grep -q '^LAB-EXIT=' "$console" && rm -f "$out/.stalled"
    [ -e "$out/.stalled" ] || break
    [ "$attempt" = 1 ] && echo "lab: booting L1 again to run what is left" | tee -a "$console" >&2
done
set -e
status=$(sed -n 's/^LAB-EXIT=\([0-9]*\).*/\1/p' "$console" | tr -d '\r' | tail -1)
if [ -z "$status" ] || [ -e "$out/.stalled" ]; then
    [ -e "$out/.stalled" ] && echo "lab: L1 froze twice" >&2
    [ "$qemu" -eq 124 ] && echo "lab: L1 timed out after ${timeout}s" >&2 || echo "lab: L1 ended without running the command (qemu exit $qemu)" >&2
    exit 125
fi
exit "$status"
