#!/bin/sh
# Runs inside L1 (lab/run.sh): virtio-vsock with Cloud Hypervisor's hybrid
# socket, the VMM confined (--seccomp true --user nobody). The host side
# (vsock.py) connects with CONNECT <port> and serves <socket>_<port>; the
# guest (l2.action=vsock) moves 64 MiB each way, opens 50 streams at once,
# meets refused ports and peers that close or stop reading, and reboots.
# Leaves vsock.log, vsock.status and vsock.check.
# Usage: vsock.sh VMM CACHE
vmm=$1 cache=$2
here=$(dirname "$0")
dir=/run/vsock-lab
rm -rf $dir; mkdir -p $dir; chmod 1777 $dir
: > vsock.log
timeout -k 10 600 "$vmm" --kernel "$cache/l2-vmlinux" --initramfs "$cache/l2-initramfs.cpio" \
    --cmdline "console=ttyS0 panic=-1 quiet l2.action=vsock" --cpus 2 --memory size=512M \
    --console off --serial tty --seccomp true --user nobody -v \
    --vsock cid=3,socket=$dir/v.sock > vsock.log 2>&1 &
vmm_pid=$!
tries=0; until [ -S $dir/v.sock ] || [ $tries -ge 100 ]; do sleep 0.1; tries=$((tries + 1)); done
python3 "$here/vsock.py" $dir/v.sock vsock.log $vmm_pid > vsock.check 2>&1 &
driver=$!
wait $vmm_pid
echo $? > vsock.status
sleep 1; kill $driver 2>/dev/null
echo "L1: socket file after exit: $(ls $dir/v.sock 2>/dev/null || echo gone)" >> vsock.check
rm -rf $dir
