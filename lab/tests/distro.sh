#!/bin/sh
# Runs inside L1 (lab/run.sh): a real distribution from its disk — Debian 12
# with systemd, its own kernel and initramfs-tools initrd (lab/debian.sh) —
# confined as a production launch is. Its boot-report unit prints
# "LAB-BOOT: <uptime> state=<systemd's state>" once no start-up job is left,
# and powers off. Leaves distro.log and distro.status.
# Usage: distro.sh VMM CACHE
vmm=$1 image=$2/debian12
if [ ! -e "$image/disk.raw" ]; then
    echo "no Debian image in $image: run lab/debian.sh on the host first" > distro.log
    echo 127 > distro.status
    exit 0
fi
disk=/run/distro-lab.raw   # L1's tmpfs: the guest writes to its root
cp --sparse=always "$image/disk.raw" "$disk"
timeout -k 10 600 "$vmm" --kernel "$image/vmlinuz" --initramfs "$image/initrd.img" --disk path=$disk \
    --cmdline "console=ttyS0 root=/dev/vda1 rw quiet panic=-1" --cpus 2 --memory size=1G \
    --serial tty --console off --seccomp true --user nobody > distro.log 2>&1
echo $? > distro.status
rm -f "$disk"
