#!/bin/sh
# Runs inside L1 (lab/run.sh): the guest's console on a socket carrying a
# login-less shell an operator types into: hvc0 on `--console socket=PATH`
# (a client that connects, then a second one after it left), confined
# (--seccomp true --user nobody). Leaves consock.{log,status,check}.
# (A pty console is tested on the host, EndToEndTests: in L1's chroot the
# pty the VMM opened was not under the chroot's /dev/pts.)
# Usage: consoles.sh VMM CACHE
vmm=$1 cache=$2
here=$(dirname "$0")
. "$here/common.sh"
dir=/run/console-lab
rm -rf $dir; mkdir -p $dir; chmod 1777 $dir
launch() { # name, console device in the guest, console options...
    name=$1 device=$2; shift 2
    timeout -k 10 300 "$vmm" --kernel "$cache/l2-vmlinux" --initramfs "$cache/l2-initramfs.cpio" \
        --cmdline "console=ttyS0 panic=-1 quiet l2.action=shell l2.console=$device" --cpus 1 --memory size=512M \
        --seccomp true --user nobody -v "$@" > $name.log 2>&1 &
}
launch consock hvc0 --serial tty --console socket=$dir/console.sock
pid=$!
wait_for consock.log "L2: shell on /dev/hvc0" 1
python3 "$here/shell.py" socket $dir/console.sock > consock.check 2>&1
wait $pid
echo $? > consock.status
echo "L1: socket file after exit: $(ls $dir/console.sock 2>/dev/null || echo gone)" >> consock.check

rm -rf $dir
