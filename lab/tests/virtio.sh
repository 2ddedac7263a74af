#!/bin/sh
# Runs inside L1 (lab/run.sh): the seed's command shape, root on
# /dev/vda1 of a virtio disk, and the other virtio devices, confined as a
# production launch is. Each scenario leaves NAME.log (the VMM's output),
# NAME.status (its exit status) and NAME.check (what the host side found
# on the disk image afterwards) in the current directory.
# Usage: virtio.sh VMM CACHE
vmm=$1 cache=$2
. "$(dirname "$0")/common.sh"
work=/run/virtio-lab   # L1's tmpfs: images get real OFD locks there
mkdir -p $work
# A file of the guest's root file system, read from the image on the host
# side after replaying its journal, as the guest's next mount would: a
# sync commits to the journal, not necessarily to the file's home blocks.
root_file() { # image, path
    dd if="$1" of=$work/part.img bs=1M skip=1 status=none
    e2fsck -E journal_only -y $work/part.img > /dev/null 2>&1
    debugfs -R "cat $2" $work/part.img 2>/dev/null
}
fresh_disk() { cp "$cache/l2-disk.raw" "$1"; }
seed() { # name, disk, l2.action, then more arguments
    name=$1 disk=$2 action=$3; shift 3
    timeout -k 10 300 "$vmm" --kernel "$cache/l2-vmlinux" --initramfs "$cache/l2-initramfs.cpio" \
        --cmdline "console=ttyS0 root=/dev/vda1 rw panic=-1 quiet l2.action=$action" \
        --cpus 4 --memory size=512M --seccomp true --user nobody "$@" > "$name.log" 2>&1
    echo $? > "$name.status"
}

# The seed's command without --device: root on vda1, plus a read-only
# second disk (four queues) given in the same --disk list. The guest writes a file,
# syncs and powers off; the file must be on the host's image.
fresh_disk $work/disk.raw
truncate -s 8M $work/ro.raw; printf 'second disk' | dd of=$work/ro.raw conv=notrunc status=none
seed disk $work/disk.raw disk --landlock --disk path=$work/disk.raw path=$work/ro.raw,readonly=on,serial=ro-disk,num_queues=4 \
    --console off --serial tty
root_file $work/disk.raw /l2-written.txt > disk.check

# SIGTERM while the guest writes: what it flushed before is on the image.
fresh_disk $work/disk.raw
seed sigterm $work/disk.raw sigterm --disk path=$work/disk.raw --console off --serial tty &
wait_for sigterm.log "L2: flushed" 1 && sleep 1
pkill -TERM -f "l2.action=sigterm.*virtio-lab"
wait
root_file $work/disk.raw /l2-flushed.txt > sigterm.check

# hvc0 both ways: the guest's line comes out on the VMM's standard output
# (--console tty), a line typed there reaches the guest's read on hvc0.
fresh_disk $work/disk.raw
fifo=/run/vmm-hvc.fifo
rm -f "$fifo"; mkfifo "$fifo"
( wait_for hvc.log "L2: hello on hvc0" 1; echo "typed on hvc0"; sleep 60 ) > "$fifo" &
feeder=$!
seed hvc $work/disk.raw hvc --disk path=$work/disk.raw --console tty --serial file=hvc-serial.log < "$fifo"
kill $feeder 2>/dev/null
rm -f "$fifo"
