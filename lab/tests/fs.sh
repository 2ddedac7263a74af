#!/bin/sh
# Runs inside L1 (lab/run.sh): virtio-fs on Debian's virtiofsd, the VMM
# confined (--seccomp true --user nobody) with shared RAM, the share on PCI
# segment 1 as Kata places it. The guest (l2.action=fs) mounts it, reads and
# writes files with md5s L1 checks, renames, unlinks, writes 1,000 small
# files, fsyncs; RAM is hot-added under the mounted share; the guest
# reboots and mounts again; a second share is hot-added, used and removed;
# last, the first virtiofsd is killed: the VMM must log it and run on.
# Then a root file system on vhost-user-blk (qemu-storage-daemon).
# Leaves fs.log, fs.status, fs.check and vublk.log, vublk.status, vublk.check.
# Usage: fs.sh VMM CACHE
vmm=$1 cache=$2
here=$(dirname "$0")
. "$here/common.sh"
chremote="$(dirname "$vmm")/ch-remote"
dir=/run/fs-lab
rm -rf $dir; mkdir -p $dir/share $dir/second; chmod 1777 $dir
head -c 16M /dev/urandom > $dir/share/in.bin
echo "second share" > $dir/second/note.txt
: > fs.check
say() { echo "L1: $*" >> fs.check; }
virtiofsd() { # socket, directory
    /usr/lib/qemu/virtiofsd --socket-path=$1 -o source=$2 -o cache=none -o sandbox=chroot -o log_level=err &
    tries=0; until [ -S $1 ] || [ $tries -ge 50 ]; do sleep 0.1; tries=$((tries + 1)); done
    chmod 777 $1 # the VMM connects as nobody for a hot-added share
}
virtiofsd $dir/fs.sock $dir/share
fsd=$!
say "in.bin md5=$(md5sum < $dir/share/in.bin | cut -d' ' -f1)"
timeout -k 10 900 "$vmm" --kernel "$cache/l2-vmlinux" --initramfs "$cache/l2-initramfs.cpio" \
    --cmdline "console=ttyS0 panic=-1 quiet l2.action=fs" --cpus 2 \
    --memory size=512M,shared=on,hotplug_size=256M --platform num_pci_segments=2 \
    --console off --serial tty --seccomp true --user nobody -v --api-socket $dir/api.sock \
    --fs tag=kataShared,socket=$dir/fs.sock,pci_segment=1 > fs.log 2>&1 &
vmm_pid=$!
api() { "$chremote" --api-socket $dir/api.sock "$@" >> fs.check 2>&1; echo "$?"; }
{
    if wait_for fs.log "L2: fs small files done" 1 $vmm_pid; then
        say "renamed.bin md5=$(md5sum < $dir/share/renamed.bin 2>/dev/null | cut -d' ' -f1)"
        # read is the shell's own: a cat per file took minutes in L1.
        bad=0 i=0
        while [ $i -lt 1000 ]; do
            i=$((i + 1)); v=; read -r v 2>/dev/null < $dir/share/small/$i; [ "$v" = "$i" ] || bad=$((bad + 1))
        done
        say "small files: $(ls $dir/share/small | wc -l) there, $bad wrong"
        say "renamed: $(ls $dir/share | tr '\n' ' ')"
        say "resize RAM status=$(api resize --memory 768M)"
    fi
    if wait_for fs.log "L2: fs waiting for a second share" 1 $vmm_pid; then
        virtiofsd $dir/second.sock $dir/second
        say "add-fs status=$(api add-fs tag=second,socket=$dir/second.sock,id=second)"
    fi
    if wait_for fs.log "L2: fs second share unmounted" 1 $vmm_pid; then
        say "remove-device status=$(api remove-device second)"
        wait_for fs.log "L2: fs second share gone" 1 $vmm_pid
    fi
    if wait_for fs.log "L2: fs all done" 1 $vmm_pid; then
        kill -9 $fsd
        wait_for fs.log "the vhost-user backend closed its socket" 1 $vmm_pid && say "backend death logged"
        sleep 1
        say "ping after the backend's death status=$(api ping)"
        say "shutdown-vmm status=$(api shutdown-vmm)"
    fi
} &
checker=$!
wait $vmm_pid
echo $? > fs.status
wait $checker
kill $fsd 2>/dev/null
pkill -f "virtiofsd --socket-path=$dir" 2>/dev/null

# vhost-user-blk: the root file system on a disk qemu-storage-daemon serves;
# the guest's write must be on the image afterwards.
cp "$cache/l2-disk.raw" $dir/root.raw
qemu-storage-daemon --blockdev driver=file,node-name=root,filename=$dir/root.raw \
    --export type=vhost-user-blk,id=root,node-name=root,addr.type=unix,addr.path=$dir/blk.sock,writable=on,num-queues=2 &
qsd=$!
tries=0; until [ -S $dir/blk.sock ] || [ $tries -ge 50 ]; do sleep 0.1; tries=$((tries + 1)); done
timeout -k 10 300 "$vmm" --kernel "$cache/l2-vmlinux" --initramfs "$cache/l2-initramfs.cpio" \
    --cmdline "console=ttyS0 root=/dev/vda1 rw panic=-1 quiet l2.action=disk" --cpus 2 --memory size=512M,shared=on \
    --console off --serial tty --seccomp true --user nobody -v \
    --disk vhost_user=on,socket=$dir/blk.sock,num_queues=2 > vublk.log 2>&1
echo $? > vublk.status
kill $qsd; wait $qsd
dd if=$dir/root.raw of=$dir/part.img bs=1M skip=1 status=none
e2fsck -E journal_only -y $dir/part.img > /dev/null 2>&1
debugfs -R "cat /l2-written.txt" $dir/part.img > vublk.check 2>/dev/null
rm -rf $dir
