#!/bin/sh
# Runs inside L1 (lab/run.sh): boots the L2 cloud kernel with the VMM under
# test in several configurations, confined as a production launch would be
# (seccomp on, running as nobody). Each boot leaves NAME.log (console and
# errors) and NAME.status (the VMM's exit status) in the current directory.
# Usage: linux-boot.sh VMM CACHE
vmm=$1 cache=$2
boot() { # name, kernel file, then cloud-hypervisor arguments
    name=$1 kernel=$2; shift 2
    timeout -k 10 300 "$vmm" --kernel "$cache/$kernel" --initramfs "$cache/l2-initramfs.cpio" \
        --serial tty --console off --seccomp true --user nobody "$@" > "$name.log" 2>&1
    echo $? > "$name.status"
}
. "$(dirname "$0")/common.sh"
boot vmlinux-4cpu l2-vmlinux --cmdline "console=ttyS0 panic=-1 quiet" --cpus 4 --memory size=512M
boot bzimage-4cpu l2-bzImage --cmdline "console=ttyS0 panic=-1 quiet" --cpus 4 --memory size=512M
# One vCPU with RAM above the 32-bit hole: one boot for both (each costs the lab half a minute).
boot vmlinux-1cpu-3g l2-vmlinux --cmdline "console=ttyS0 panic=-1 quiet" --cpus 1 --memory size=3200M
boot vmlinux-panic l2-vmlinux --cmdline "console=ttyS0 panic=-1 quiet l2.action=panic" --cpus 2 --memory size=512M

# Console input: a line typed once the guest waits for it reaches its
# shell through COM1's receive interrupt (IRQ 4, irqfd, IOAPIC). The FIFO
# lives on L1's tmpfs (9p refuses special files).
fifo=/run/vmm-input.fifo
rm -f "$fifo"; mkfifo "$fifo"
( wait_for vmlinux-input.log "L2: waiting for input" 1; echo "hello from L1" ) > "$fifo" &
boot vmlinux-input l2-vmlinux --cmdline "console=ttyS0 panic=-1 quiet l2.action=echo" --cpus 2 --memory size=512M < "$fifo"
wait
rm -f "$fifo"

# Reboot: the guest's reboot restarts it in the same VMM process, as under
# Cloud Hypervisor; once it has come up twice, SIGTERM ends the VMM (exit 0).
boot vmlinux-reboot l2-vmlinux --cmdline "console=ttyS0 panic=-1 quiet l2.action=reboot" --cpus 2 --memory size=512M &
wait_for vmlinux-reboot.log "L2: userspace up" 2
pkill -TERM -f "l2.action=reboot"
wait
