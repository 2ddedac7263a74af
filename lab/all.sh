#!/usr/bin/env bash
# Every lab scenario (lab/tests/), split between two L1 boots that run side
# by side: an L1 has one vCPU (lab/tests/all.sh says why), so a single L1
# left the second core of a 2-core machine idle for the half hour the lab
# takes. On a one-core machine the two run one after the other. Each lane's
# files go to OUT/lane-N (what lab/run.sh --out leaves, and its run.out,
# run.err, run.status); exits 0 when both lanes' scenarios ran, else with a
# failing lane's status.
#
#   lab/all.sh --out DIR [--timeout SECONDS] VMM CACHE
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="" timeout=3600
while [ $# -gt 0 ]; do
    case "$1" in
        --out) out="$2"; shift 2 ;;
        --timeout) timeout="$2"; shift 2 ;;
        *) break ;;
    esac
done
[ -n "$out" ] && [ $# -eq 2 ] || { echo "usage: $0 --out DIR [--timeout S] VMM CACHE" >&2; exit 2; }
vmm=$1 cache=$2
# Split by their wall times in times.txt (about 1,000 s a lane alone on a
# good day); a scenario's L1 state does not depend on another's. The ones
# that time their guest (the API's answers, a migration's downtime) come
# last, once the host's own tests are done.
lanes=("distro fs linux-boot api"
       "vfio cycles vsock virtio snapshot net viommu consoles migration")
# A lane whose L1 is still running when this script is stopped goes too.
trap 'pkill -f "lab.out=$out/lane-" 2>/dev/null || true' EXIT

run_lane() { # number
    local dir="$out/lane-$1"
    mkdir -p "$dir"
    (set +e; "$here/run.sh" --out "$dir" --timeout "$timeout" -- "sh $here/tests/all.sh $vmm $cache ${lanes[$1 - 1]}" \
         > "$dir/run.out" 2> "$dir/run.err"; echo $? > "$dir/run.status")
}
if [ "$(nproc)" -ge 2 ]; then
    run_lane 1 & run_lane 2 & wait
else
    run_lane 1; run_lane 2
fi
status=0
for n in 1 2; do
    dir="$out/lane-$n"
    lane_status=$(cat "$dir/run.status" 2>/dev/null || echo 125)
    echo "lab lane $n (${lanes[$n - 1]}): exit $lane_status"
    tail -n 20 "$dir/run.out"
    sed "s/^/lane $n: /" "$dir/run.err" >&2
    [ "$lane_status" -eq 0 ] || [ "$status" -ne 0 ] || status=$lane_status
done
exit "$status"
