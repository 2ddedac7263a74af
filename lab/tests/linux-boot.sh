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
boot vmlinux-panic l2-vmlinux --cmdline "console=ttyS0 panic=-1 quiet l2.action=panic" --cpus 2 --memory size=512M
boot vmlinux-3g l2-vmlinux --cmdline "console=ttyS0 panic=-1 quiet" --cpus 2 --memory size=3200M

# Console input: a line typed once the guest waits for it reaches its
# shell through COM1's receive interrupt (IRQ 4, irqfd, IOAPIC). The FIFO
# lives on L1's tmpfs (9p refuses special files); the writer gives up with
# the boot's own timeout.
fifo=/run/vmm-input.fifo
rm -f "$fifo"; mkfifo "$fifo"
( tries=0
  while ! grep -q "L2: waiting for input" vmlinux-input.log 2>/dev/null && [ $tries -lt 1500 ]; do
      sleep 0.2; tries=$((tries + 1))
  done
  echo "hello from L1" ) > "$fifo" &
boot vmlinux-input l2-vmlinux --cmdline "console=ttyS0 panic=-1 quiet l2.action=echo" --cpus 2 --memory size=512M < "$fifo"
wait
rm -f "$fifo"
