#!/bin/sh
# Runs inside L1 (lab/run.sh): 1,000 hot-add and removal cycles of an
# assigned device (one of L1's edu devices) through the API, under a tiny
# guest that acknowledges each at once (the cache's hotplug guest), beside
# a command-line --device that keeps the VMM's container in use. Every
# cycle must succeed, and the VMM's memory and descriptors stay flat.
# Leaves cycles.check, cycles.status and cycles-vmm.log.
# Usage: cycles.sh VMM CACHE
vmm=$1 cache=$2
here=$(dirname "$0")
. "$here/common.sh"
work=/run/cycles-lab
mkdir -p $work
sock=$work/api.sock
set -- $(edus)
kept=$1 cycled=$2
timeout -k 10 600 "$vmm" --api-socket "path=$sock" --kernel "$cache/hotplug-guest" --serial "file=$PWD/cycles.log" \
    --console off --memory size=64M --seccomp true --device "path=/sys/bus/pci/devices/$kept/,id=kept" > cycles-vmm.log 2>&1 &
pid=$!
tries=0
until [ -S $sock ] || [ $tries -ge 100 ]; do sleep 0.1; tries=$((tries + 1)); done
wait_for cycles.log "hotplug guest ready" 1
vmm_pid=$(for stat in /proc/[0-9]*/stat; do set -- $(cat $stat 2>/dev/null); [ "$4" = "$pid" ] && echo $1 && break; done)
python3 "$here/cycles.py" $sock "$vmm_pid" "$cycled" 1000 > cycles.check
curl -s --max-time 30 --unix-socket $sock -X PUT http://localhost/api/v1/vmm.shutdown
wait $pid
echo $? > cycles.status
rm -rf $work
