#!/bin/sh
# Runs inside L1 (lab/run.sh): boots the L2 cloud kernel with the VMM under
# test in several configurations, confined as a production launch would be
# (seccomp on, running as nobody). Each boot leaves NAME.log (console and
# errors) and NAME.status (the VMM's exit status) in the current directory.
# Usage: linux-boot.sh VMM CACHE
vmm=$1 cache=$2
boot() { # name, kernel file, then cloud-hypervisor arguments
    name=$1 kernel=$2; shift 2
    timeout 300 "$vmm" --kernel "$cache/$kernel" --initramfs "$cache/l2-initramfs.cpio" \
        --serial tty --console off --seccomp true --user nobody "$@" > "$name.log" 2>&1
    echo $? > "$name.status"
}
boot vmlinux-4cpu l2-vmlinux --cmdline "console=ttyS0 panic=-1 quiet" --cpus 4 --memory size=512M
boot bzimage-4cpu l2-bzImage --cmdline "console=ttyS0 panic=-1 quiet" --cpus 4 --memory size=512M
boot vmlinux-1cpu l2-vmlinux --cmdline "console=ttyS0 panic=-1 quiet" --cpus 1 --memory size=512M
boot vmlinux-3g l2-vmlinux --cmdline "console=ttyS0 panic=-1 quiet" --cpus 2 --memory size=3200M
