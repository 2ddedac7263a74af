#!/usr/bin/env bash
# Prepares the nested lab (shared/LAB.md) on a fresh Debian 12 machine and
# caches it: QEMU and tools from Debian, the L1 kernel (generic flavour, with
# 9p) and its initramfs, and the L2 artefacts for the VMM under test (the
# cloud kernel as bzImage and as an uncompressed PVH vmlinux, its modules,
# busybox initramfs images). Prints the cache directory.
#
# LAB_CACHE overrides the cache (default: .lab-cache in the repository).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cache="${LAB_CACHE:-$here/../.lab-cache}"
mkdir -p "$cache"
cache="$(cd "$cache" && pwd)"

. "$here/packages.sh"
install_missing qemu-system-x86 busybox-static cpio lz4 kmod e2fsprogs fdisk make libelf1 iperf3 xz-utils

# The newest Debian 6.1 ABI that has both flavours.
abi=$(apt-cache search --names-only '^linux-image-6\.1\.0-[0-9]+-cloud-amd64$' | awk '{print $1}' \
      | sed -E 's/linux-image-(6\.1\.0-[0-9]+)-cloud-amd64/\1/' | sort -V | tail -1)
[ -n "$abi" ] || { echo "lab: no linux-image-6.1.0-*-cloud-amd64 in the apt lists: run apt-get update" >&2; exit 1; }
stamp="$cache/ready-$abi-$(cat "$here"/setup.sh "$here"/l1-init.sh "$here"/l2-init.sh "$here"/../bench/guest/blkbench.c \
    "$here"/guest/edutest.c "$here"/guest/realtime.c "$here"/guest/vsocktest.c "$here"/guest/viommu_dma.c "$here"/guest/edu.h "$here"/../Tests/HypervisorTests/Guests/hotplug.S \
    "$here"/../Tests/HypervisorTests/Guests/common.S "$here"/../bench/guest/barbench.c "$here"/guest/edu_irq/* | sha256sum | cut -c1-12)"
if [ -e "$stamp" ]; then echo "$cache"; exit 0; fi

fetch() { # flavour dir
    local pkg="linux-image-$abi-$1"
    if [ ! -d "$cache/$2/boot" ]; then
        rm -rf "$cache/$2" "$cache/dl"; mkdir -p "$cache/dl" "$cache/$2"
        (cd "$cache/dl" && apt-get download "$pkg" >/dev/null 2>&1) \
            || { echo "lab: cannot download $pkg from the Debian archive" >&2; exit 1; }
        dpkg-deb -x "$cache"/dl/"$pkg"_*.deb "$cache/$2"
        rm -rf "$cache/dl"
    fi
}
fetch amd64 l1-kernel
fetch cloud-amd64 l2-kernel

# The L2 kernel's headers and kbuild, for the lab's guest test module.
if [ ! -d "$cache/l2-headers/usr/src" ]; then
    rm -rf "$cache/l2-headers" "$cache/dl"; mkdir -p "$cache/dl" "$cache/l2-headers"
    (cd "$cache/dl" && apt-get download "linux-headers-$abi-cloud-amd64" "linux-headers-$abi-common" \
        "linux-kbuild-$(echo "$abi" | cut -d. -f1-2)" >/dev/null 2>&1) \
        || { echo "lab: cannot download the L2 kernel's headers from the Debian archive" >&2; exit 1; }
    for deb in "$cache"/dl/*.deb; do dpkg-deb -x "$deb" "$cache/l2-headers"; done
    # The flavour's Makefile includes the common one by its installed path.
    sed -i "s|include /usr/src/|include $cache/l2-headers/usr/src/|" \
        "$cache/l2-headers/usr/src/linux-headers-$abi-cloud-amd64/Makefile"
    rm -rf "$cache/dl"
fi

# Modules with their dependencies, in load order, from modules.dep.
modules_in_order() { # root kver names...
    local root=$1 kver=$2; shift 2
    for m in "$@"; do modprobe -d "$root" -S "$kver" --show-depends "$m" 2>/dev/null | awk '$1=="insmod"{print $2}'; done \
        | awk '!seen[$0]++'
}
# Copies them into an initramfs tree's modules/, with modules/order for its init.
copy_modules() { # root kver tree names...
    local root=$1 kver=$2 tree=$3; shift 3
    : > "$tree/modules/order"
    for m in $(modules_in_order "$root" "$kver" "$@"); do
        cp "$m" "$tree/modules/"
        basename "$m" >> "$tree/modules/order"
    done
}

# L1 initramfs: busybox, the modules for 9p, KVM, VFIO and vhost (the
# benchmarks' QEMU), and the init.
l1k="$abi-amd64"
depmod -b "$cache/l1-kernel" "$l1k"
rm -rf "$cache/l1-root"; mkdir -p "$cache/l1-root"/{bin,dev,proc,sys,host,modules}
cp /bin/busybox "$cache/l1-root/bin/busybox"
copy_modules "$cache/l1-kernel" "$l1k" "$cache/l1-root" 9p 9pnet_virtio virtio_pci kvm_amd vfio_pci vfio_iommu_type1 tun vhost_net vhost_vsock
cp "$here/l1-init.sh" "$cache/l1-root/init"
chmod +x "$cache/l1-root/init"
(cd "$cache/l1-root" && find . | cpio -o -H newc --quiet) > "$cache/l1-initramfs.cpio"
cp "$cache/l1-kernel/boot/vmlinuz-$l1k" "$cache/l1-vmlinuz"

# L2: the cloud kernel as bzImage, and its LZ4 payload unpacked to the ELF
# vmlinux (setup_sects at 0x1f1, payload_offset at 0x248, payload_length at 0x24c).
l2k="$abi-cloud-amd64"
bz="$cache/l2-kernel/boot/vmlinuz-$l2k"
cp "$bz" "$cache/l2-bzImage"
read -r setup_sects payload_offset payload_length < <(python3 - "$bz" <<'PY'
import struct, sys
d = open(sys.argv[1], "rb").read(0x250)
print(d[0x1f1] or 4, struct.unpack_from("<I", d, 0x248)[0], struct.unpack_from("<I", d, 0x24c)[0])
PY
)
start=$(( (setup_sects + 1) * 512 + payload_offset ))
tail -c +$((start + 1)) "$bz" | head -c "$payload_length" | lz4 -dc > "$cache/l2-vmlinux" 2>/dev/null || true
python3 - "$cache/l2-vmlinux" <<'PY' || { echo "lab: could not unpack the L2 vmlinux from its bzImage" >&2; exit 1; }
import sys
assert open(sys.argv[1], "rb").read(4) == b"\x7fELF"
PY

# L2 initramfs: busybox and an init that reports what the tests check.
depmod -b "$cache/l2-kernel" "$l2k"
rm -rf "$cache/l2-root"; mkdir -p "$cache/l2-root"/{bin,dev,proc,sys,modules}
cp /bin/busybox "$cache/l2-root/bin/busybox"
copy_modules "$cache/l2-kernel" "$l2k" "$cache/l2-root" pvpanic-mmio virtio_pci virtio_blk virtio_console \
    virtio_rng virtio_net ext4 uio_pci_generic button evdev vmw_vsock_virtio_transport virtiofs
cp "$here/l2-init.sh" "$cache/l2-root/init"
chmod +x "$cache/l2-root/init"
# Guest-side tools: the block benchmark, the assigned-device test, the clock.
gcc -O2 -static -pthread -o "$cache/l2-root/bin/blkbench" "$here/../bench/guest/blkbench.c"
gcc -O2 -static -o "$cache/l2-root/bin/edutest" "$here/guest/edutest.c"
gcc -O2 -static -o "$cache/l2-root/bin/realtime" "$here/guest/realtime.c"
gcc -O2 -static -o "$cache/l2-root/bin/barbench" "$here/../bench/guest/barbench.c"
gcc -O2 -static -o "$cache/l2-root/bin/vsocktest" "$here/guest/vsocktest.c"
gcc -O2 -static -o "$cache/l2-root/bin/viommu_dma" "$here/guest/viommu_dma.c"
# iperf3 for the network benchmark, with the shared libraries it loads.
for f in /usr/bin/iperf3 $(ldd /usr/bin/iperf3 | grep -o '/[^ ]*'); do
    mkdir -p "$cache/l2-root$(dirname "$f")"; cp -L "$f" "$cache/l2-root$f"
done
# The edu test driver (MSI), built out of tree against the L2 kernel.
rm -rf "$cache/edu_irq"; cp -r "$here/guest/edu_irq" "$cache/edu_irq"
make -s -C "$cache/l2-headers/usr/src/linux-headers-$abi-cloud-amd64" M="$cache/edu_irq" modules >/dev/null 2>&1 \
    || { echo "lab: cannot build lab/guest/edu_irq against the L2 kernel" >&2; exit 1; }
mkdir -p "$cache/l2-root/lib"
cp "$cache/edu_irq/edu_irq.ko" "$cache/l2-root/lib/"
(cd "$cache/l2-root" && find . | cpio -o -H newc --quiet) > "$cache/l2-initramfs.cpio"

# L2 disk: an MBR partition table and an ext4 root on partition 1 (from
# 1 MiB, as cloud images lay it out) holding busybox and the same init.
rm -rf "$cache/l2-rootfs"; mkdir -p "$cache/l2-rootfs"/{bin,sbin,dev,proc,sys,tmp}
cp /bin/busybox "$cache/l2-root/bin/edutest" "$cache/l2-root/bin/realtime" "$cache/l2-root/bin/vsocktest" \
    "$cache/l2-root/bin/viommu_dma" "$cache/l2-rootfs/bin/"
mkdir -p "$cache/l2-rootfs/lib"; cp "$cache/l2-root/lib/edu_irq.ko" "$cache/l2-rootfs/lib/"
cp "$here/l2-init.sh" "$cache/l2-rootfs/sbin/init"
chmod +x "$cache/l2-rootfs/sbin/init"
rm -f "$cache/l2-root.ext4" "$cache/l2-disk.raw"
mkfs.ext4 -q -F -L l2root -d "$cache/l2-rootfs" "$cache/l2-root.ext4" 63M >/dev/null
truncate -s 64M "$cache/l2-disk.raw"
echo 'start=2048, type=83' | sfdisk -q "$cache/l2-disk.raw"
dd if="$cache/l2-root.ext4" of="$cache/l2-disk.raw" bs=1M seek=1 conv=notrunc status=none
rm -f "$cache/l2-root.ext4"

# The virtual IOMMU's L2 kernel: Debian 13's cloud kernel (6.12; Debian 12's
# has no virtio-iommu driver), from the Debian 13 archive of the mirror this
# machine's apt uses, through apt lists of the cache's own (the host's
# sources are left alone). Its modules are xz-compressed: busybox's insmod
# takes them unpacked.
if [ ! -e "$cache/l2-trixie-bzImage" ]; then
    apt_dir="$cache/apt-trixie"
    mirror=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
    [ -n "$mirror" ] || mirror=$(awk '$1 == "deb" && $2 ~ /^https?:/ {print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
    [ -n "$mirror" ] || { echo "lab: no Debian mirror in this machine's apt sources" >&2; exit 1; }
    rm -rf "$apt_dir"; mkdir -p "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial" "$apt_dir/dl"
    echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $mirror trixie main" > "$apt_dir/sources.list"
    apt_trixie=(-o "Dir::Etc::sourcelist=$apt_dir/sources.list" -o Dir::Etc::sourceparts=- \
                -o "Dir::State::Lists=$apt_dir/lists" -o "Dir::Cache=$apt_dir/cache")
    apt-get "${apt_trixie[@]}" update -qq >/dev/null 2>&1 \
        || { echo "lab: cannot read the Debian 13 package lists from $mirror" >&2; exit 1; }
    pkg=$(apt-cache "${apt_trixie[@]}" search --names-only '^linux-image-6\.12\.[0-9.]+\+deb13-cloud-amd64$' \
          | awk '{print $1}' | sort -V | tail -1)
    [ -n "$pkg" ] || { echo "lab: no Debian 13 cloud kernel in the package lists" >&2; exit 1; }
    (cd "$apt_dir/dl" && apt-get "${apt_trixie[@]}" download "$pkg" >/dev/null 2>&1) \
        || { echo "lab: cannot download $pkg from the Debian 13 archive" >&2; exit 1; }
    rm -rf "$cache/l2-trixie"; mkdir -p "$cache/l2-trixie"
    dpkg-deb -x "$apt_dir"/dl/*.deb "$cache/l2-trixie"
    [ -e "$cache/l2-trixie/lib" ] || ln -s usr/lib "$cache/l2-trixie/lib"
    cp "$cache"/l2-trixie/boot/vmlinuz-* "$cache/l2-trixie-bzImage"
    rm -rf "$apt_dir"
fi
tk=$(ls "$cache/l2-trixie/lib/modules")
depmod -b "$cache/l2-trixie" "$tk"
rm -rf "$cache/l2-trixie-root"; mkdir -p "$cache/l2-trixie-root"/{bin,dev,proc,sys,modules}
cp /bin/busybox "$cache/l2-trixie-root/bin/busybox"
: > "$cache/l2-trixie-root/modules/order"
for m in $(modules_in_order "$cache/l2-trixie" "$tk" virtio-iommu virtio_blk virtio_rng vfio-pci vfio_iommu_type1); do
    name=$(basename "$m" .xz)
    xz -dc "$m" > "$cache/l2-trixie-root/modules/$name"
    echo "$name" >> "$cache/l2-trixie-root/modules/order"
done
cp "$here/l2-init.sh" "$cache/l2-trixie-root/init"
# What bench/viommu.py runs without a root disk.
cp "$cache/l2-root/bin/blkbench" "$cache/l2-root/bin/viommu_dma" "$cache/l2-trixie-root/bin/"
chmod +x "$cache/l2-trixie-root/init"
(cd "$cache/l2-trixie-root" && find . | cpio -o -H newc --quiet) > "$cache/l2-trixie-initramfs.cpio"

# The tiny guest that acknowledges hotplug at once, for the device cycles.
"$here/../scripts/build-guest.sh" hotplug "$cache/hotplug-guest"

# L1's NVMe controller's namespace: a known first sector for the guest to read.
truncate -s 16M "$cache/l1-nvme.raw"
printf 'nvme lab namespace' | dd of="$cache/l1-nvme.raw" conv=notrunc status=none

rm -f "$cache"/ready-*
touch "$stamp"
echo "$cache"
