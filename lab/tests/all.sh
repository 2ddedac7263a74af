#!/bin/sh
# Lab scenarios in one L1 boot. Usage: all.sh VMM CACHE [SCENARIO...]
# (default: every scenario; lab/all.sh splits them between two L1s).
# Each script's wall time goes to times.txt: the lab's budget is watched there.
# (L1 has one vCPU; with two, L1's kernel crashed under TCG in the first
# minutes, its GS base lost on a nested VM exit.)
here=$(dirname "$0")
vmm=$1 cache=$2
shift 2
[ $# -gt 0 ] || set -- linux-boot distro snapshot migration virtio net vsock fs consoles api vfio viommu cycles
for scenario in "$@"; do
    # Done before a frozen L1 was booted again (lab/run.sh): not again.
    grep -q "^$scenario " times.txt 2>/dev/null && continue
    start=$(date +%s)
    sh "$here/$scenario.sh" "$vmm" "$cache"
    echo "$scenario $(($(date +%s) - start)) s" >> times.txt
done
cat times.txt
