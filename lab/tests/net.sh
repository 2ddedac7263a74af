#!/bin/sh
# Runs inside L1 (lab/run.sh): virtio-net. The VMM runs in a network
# namespace the test creates, with two interfaces given in one --net list:
# a tap it creates and configures itself (tap=, ip=, mask=, host_mac=, mtu=,
# four queue pairs) and a tap the test opened and hands over (fd=). L1 and
# the guest ping each other over both, and a payload goes through TCP both
# ways. Leaves net.log, net.status and net.check (what L1 saw).
# Usage: net.sh VMM CACHE
vmm=$1 cache=$2
here=$(dirname "$0")
. "$here/common.sh"
ns=vmmlab
ip netns del $ns 2>/dev/null
ip netns add $ns
ip -n $ns link set lo up
in_ns() { ip netns exec $ns "$@"; }
head -c 512K /dev/urandom > /run/net-payload

in_ns python3 "$here/tapfd.py" labtap1 192.168.250.1/24 -- timeout -k 10 300 "$vmm" \
    --kernel "$cache/l2-vmlinux" --initramfs "$cache/l2-initramfs.cpio" \
    --cmdline "console=ttyS0 panic=-1 quiet l2.action=net" --cpus 4 --memory size=512M \
    --console off --serial tty --seccomp true --user nobody \
    --net "tap=,mac=12:34:56:78:90:ab,ip=192.168.249.1,mask=255.255.255.0,host_mac=12:34:56:78:90:01,mtu=9000,num_queues=8" \
          "fd=[{fd}],mac=12:34:56:78:90:ac" > net.log 2>&1 &
vmm_pid=$!
{
    if wait_for net.log "L2: net ready" 1; then
        tap=$(in_ns ip -o link show | awk -F': ' '$2 ~ /^vmtap/ {print $2}' | head -1)
        echo "L1: tap=$tap $(in_ns ip -o link show "$tap" | grep -o 'mtu [0-9]*') $(in_ns ip -o link show "$tap" | grep -o 'link/ether [0-9a-f:]*') $(in_ns ip -o -4 addr show "$tap" | grep -o 'inet [0-9./]*')"
        echo "L1: ping 192.168.249.2 $(in_ns busybox ping -c 3 -W 5 192.168.249.2 | grep -o '[0-9]* packets received')"
        echo "L1: ping 192.168.249.2 jumbo $(in_ns busybox ping -c 3 -W 5 -s 8000 192.168.249.2 | grep -o '[0-9]* packets received')"
        echo "L1: ping 192.168.250.2 $(in_ns busybox ping -c 3 -W 5 192.168.250.2 | grep -o '[0-9]* packets received')"
        (sleep 200 | in_ns busybox nc -l -p 7782 > /run/net-back) &
        listener=$!
        sleep 1
        tries=0; until in_ns busybox nc 192.168.249.2 7781 < /run/net-payload || [ $tries -ge 20 ]; do sleep 1; tries=$((tries + 1)); done
        wait_for net.log "L2: sent back" 1
        # The listener ends when the guest's side closes; what it wrote is complete then.
        tries=0; while [ "$(in_ns pgrep -f 'nc -l -p 7782')" ] && [ $tries -lt 50 ]; do sleep 0.2; tries=$((tries + 1)); done
        echo "L1: payload md5=$(md5sum < /run/net-payload | cut -d' ' -f1) back md5=$(md5sum < /run/net-back | cut -d' ' -f1) bytes=$(wc -c < /run/net-back)"
    else
        echo "L1: the guest never said it was ready"
    fi
} > net.check 2>&1
wait $vmm_pid
echo $? > net.status
echo "L1: taps after exit: $(in_ns ip -o link show | grep -c -e vmtap -e labtap1)" >> net.check
ip netns del $ns
rm -f /run/net-payload /run/net-back
