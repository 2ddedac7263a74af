#!/usr/bin/env bash
# Builds a real distribution for L2 and caches it: Debian 12 with systemd,
# udev, dbus and its own cloud kernel and initramfs-tools initrd, made by
# mmdebstrap from the Debian archive as a user would make a minimal image.
# The disk is laid out as cloud images are (MBR, ext4 root on partition 1
# from 1 MiB). Once systemd says the boot has finished, a unit prints to
# the console what the boot cost (`LAB-BOOT: <uptime>`, systemd-analyze,
# the slowest units, the critical chain) and powers the guest off.
#
# Prints the directory holding disk.raw, vmlinuz and initrd.img.
#   lab/debian.sh [CACHE]          (default: the lab's cache)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cache="${1:-$("$here/setup.sh")}"
dir="$cache/debian12"
stamp="$dir/ready-$(cat "$0" "$here"/guest/lab-boot-report* | sha256sum | cut -c1-12)"
if [ -e "$stamp" ]; then echo "$dir"; exit 0; fi

. "$here/packages.sh"
install_missing mmdebstrap e2fsprogs fdisk

rm -rf "$dir"; mkdir -p "$dir"
root="$dir/root"
echo "lab: building Debian 12 for L2 with mmdebstrap (a few minutes, once)" >&2
mmdebstrap --quiet --variant=minbase \
    --include=systemd-sysv,udev,dbus,linux-image-cloud-amd64,initramfs-tools,kmod,iproute2,procps,e2fsprogs,netbase \
    --customize-hook='echo debian-l2 > "$1/etc/hostname"' \
    --customize-hook='printf "/dev/vda1 / ext4 rw,errors=remount-ro 0 1\n" > "$1/etc/fstab"' \
    --customize-hook='chroot "$1" passwd -d root >/dev/null' \
    --customize-hook="cp '$here/guest/lab-boot-report' \"\$1/usr/local/sbin/lab-boot-report\"" \
    --customize-hook="cp '$here/guest/lab-boot-report.service' \"\$1/etc/systemd/system/\"" \
    --customize-hook='chroot "$1" systemctl enable lab-boot-report.service >/dev/null 2>&1' \
    bookworm "$root" >&2

cp "$(ls "$root"/boot/vmlinuz-* | sort -V | tail -1)" "$dir/vmlinuz"
cp "$(ls "$root"/boot/initrd.img-* | sort -V | tail -1)" "$dir/initrd.img"
# Room for the boot's writes; the file is sparse.
mkfs.ext4 -q -F -L debian -d "$root" "$dir/root.ext4" 2047M >/dev/null
truncate -s 2G "$dir/disk.raw"
echo 'start=2048, type=83' | sfdisk -q "$dir/disk.raw"
dd if="$dir/root.ext4" of="$dir/disk.raw" bs=1M seek=1 conv=notrunc,sparse status=none
rm -rf "$root" "$dir/root.ext4"
touch "$stamp"
echo "$dir"
