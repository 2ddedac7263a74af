#!/bin/sh
# Runs inside L1 (lab/run.sh): a Linux guest on its virtio root disk is
# paused once it waits for a line on its serial console, snapshotted
# (vm.snapshot), its VMM killed; a new VMM restores it (--restore, confined,
# as nobody), resumes it, and the line typed then reaches the same shell,
# which answers and powers off. Leaves snapshot.log (both VMMs' consoles),
# snapshot.status (the restored VMM's exit status) and snapshot.check.
# Usage: snapshot.sh VMM CACHE
vmm=$1 cache=$2
. "$(dirname "$0")/common.sh"
work=/run/snapshot-lab
rm -rf $work; mkdir -p $work/snap
cp --sparse=always "$cache/l2-disk.raw" $work/disk.raw
api() { curl -s -o /dev/null -w "%{http_code}" --unix-socket "$1" -X PUT ${3:+-d "$3"} "http://localhost/api/v1/$2"; }
: > snapshot.check
mkfifo $work/in1 $work/in2
sleep 1000 > $work/in1 &
hold=$!
"$vmm" --api-socket $work/one.sock --kernel "$cache/l2-vmlinux" --initramfs "$cache/l2-initramfs.cpio" \
    --disk path=$work/disk.raw --cmdline "console=ttyS0 root=/dev/vda1 rw panic=-1 quiet l2.action=echo" \
    --cpus 2 --memory size=512M --serial tty --console off --seccomp true < $work/in1 > snapshot.log 2>&1 &
first=$!
wait_for snapshot.log "L2: waiting for input" 1
echo "pause $(api $work/one.sock vm.pause)" >> snapshot.check
echo "snapshot $(api $work/one.sock vm.snapshot "{\"destination_url\":\"file://$work/snap\"}")" >> snapshot.check
kill -9 $first; kill $hold; wait $first
echo "memory $(du -k $work/snap/memory | cut -f1) KiB of $(($(stat -c %s $work/snap/memory) / 1024))" >> snapshot.check
chown -R nobody $work
( wait_for snapshot.log "restored from" 1; sleep 1
  echo "resume $(api $work/two.sock vm.resume)" >> snapshot.check
  sleep 1; echo "hello after restore" ) > $work/in2 &
timeout -k 10 300 "$vmm" --api-socket $work/two.sock --restore source_url=file://$work/snap \
    --seccomp true --user nobody -v < $work/in2 >> snapshot.log 2>&1
echo $? > snapshot.status
wait
rm -rf $work
