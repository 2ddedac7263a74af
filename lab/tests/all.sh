#!/bin/sh
# Every lab scenario in one L1 boot. Usage: all.sh VMM CACHE
# Each script's wall time goes to times.txt: the lab's budget is watched there.
# (One lane: L1 has one vCPU; with two, L1's kernel crashed under TCG in
# the first minutes, its GS base lost on a nested VM exit.)
here=$(dirname "$0")
for scenario in linux-boot distro snapshot migration virtio net vsock fs consoles api vfio viommu cycles; do
    # Done before a frozen L1 was booted again (lab/run.sh): not again.
    grep -q "^$scenario " times.txt 2>/dev/null && continue
    start=$(date +%s)
    sh "$here/$scenario.sh" "$1" "$2"
    echo "$scenario $(($(date +%s) - start)) s" >> times.txt
done
cat times.txt
