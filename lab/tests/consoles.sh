#!/bin/sh
# Runs inside L1 (lab/run.sh): the guest's consoles on a socket and on a
# pty, each carrying a login-less shell an operator types into: hvc0 on
# `--console socket=PATH` (a client that connects, then a second one after
# it left), ttyS0 on `--serial pty` (the path from the log). Both confined
# (--seccomp true --user nobody). Leaves consock.{log,status,check} and
# conpty.{log,status,check}.
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

launch conpty ttyS0 --serial pty --console off
pid=$!
wait_for conpty.log "--serial pty: /dev/pts/" 1
pty=$(sed -n 's/.*--serial pty: \(\/dev\/pts\/[0-9]*\).*/\1/p' conpty.log | head -1)
python3 "$here/shell.py" pty "$pty" > conpty.check 2>&1
wait $pid
echo $? > conpty.status
rm -rf $dir
