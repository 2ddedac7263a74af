#!/usr/bin/env bash
# Sets up a fresh Debian 12 machine, builds the VMM, and boots the Debian
# cloud kernel with it inside the nested lab (QEMU L1 with nested KVM) in
# the mission's command: root on /dev/vda1 of a raw virtio disk, and L1's
# edu test device (bound to vfio-pci) assigned with --device; the guest
# drives it (BAR, DMA, INTx) with no driver of its own. The L2 guest's
# console is shown, and its poweroff ends the VMM.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cache="$(lab/setup.sh)"
swift build -c release --static-swift-stdlib
vmm="$PWD/.build/release/cloud-hypervisor"
lab/run.sh -- "cp $cache/l2-disk.raw /run/disk.raw;
  edu=\$(grep -l 0x11e8 /sys/bus/pci/devices/*/device | head -1 | xargs dirname);
  echo \"--- L1: starting cloud-hypervisor, assigning \$edu ---\";
  $vmm --kernel $cache/l2-vmlinux --initramfs $cache/l2-initramfs.cpio --disk path=/run/disk.raw \
    --console off --serial tty --cmdline 'console=ttyS0 root=/dev/vda1 rw panic=-1 l2.action=edu' \
    --cpus 4 --memory size=512M --device path=\$edu/ --seccomp true --user nobody;
  echo \"--- L1: cloud-hypervisor exited with \$? ---\""
