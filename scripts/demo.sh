#!/usr/bin/env bash
# Sets up a fresh Debian 12 machine, builds the VMM and boots a tiny PVH
# guest on COM1 (the Linux boot with device assignment in the nested lab
# replaces this demo as those pieces land).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
swift build -c release --static-swift-stdlib
mkdir -p .build/guests
scripts/build-guest.sh hello .build/guests/hello
echo "demo initramfs" > .build/guests/initramfs.txt
set -x
.build/release/cloud-hypervisor --kernel .build/guests/hello --initramfs .build/guests/initramfs.txt \
    --cmdline "console=ttyS0 demo" --serial tty --console off --cpus 1 --memory size=64M
