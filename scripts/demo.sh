#!/usr/bin/env bash
# Sets up a fresh Debian 12 machine, builds the VMM, and boots the Debian
# cloud kernel with it inside the nested lab (QEMU L1 with nested KVM):
# the L2 guest's console is shown, and its poweroff ends the VMM.
# (Device assignment joins this demo when VFIO lands.)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cache="$(lab/setup.sh)"
swift build -c release --static-swift-stdlib
vmm="$PWD/.build/release/cloud-hypervisor"
lab/run.sh -- "echo '--- L1: starting cloud-hypervisor ---';
  $vmm --kernel $cache/l2-vmlinux --initramfs $cache/l2-initramfs.cpio \
    --cmdline 'console=ttyS0 panic=-1' --serial tty --console off --cpus 4 --memory size=512M \
    --seccomp true --user nobody;
  echo \"--- L1: cloud-hypervisor exited with \$? ---\""
