#!/bin/sh
# Runs inside L1 (lab/run.sh): device assignment with L1's two edu devices
# (bound to vfio-pci by L1's init), confined as a production launch is.
# Each scenario leaves NAME.log and NAME.status; the preflight errors
# leave NAME.log (standard error) and NAME.status only.
# Usage: vfio.sh VMM CACHE
vmm=$1 cache=$2
work=/run/vfio-lab
mkdir -p $work
set -- $(for d in /sys/bus/pci/devices/*; do
    [ "$(cat $d/vendor)" = 0x1234 ] && [ "$(cat $d/device)" = 0x11e8 ] && basename $d; done)
edu1=$1 edu2=$2 edu_bridged=$3
echo "$edu1 $edu2" > edu-devices.txt
seed() { # name, l2.action, then more arguments
    name=$1 action=$2; shift 2
    cp "$cache/l2-disk.raw" $work/disk.raw
    timeout -k 10 300 "$vmm" --kernel "$cache/l2-vmlinux" --initramfs "$cache/l2-initramfs.cpio" --disk path=$work/disk.raw \
        --console off --serial tty --cmdline "console=ttyS0 root=/dev/vda1 rw panic=-1 quiet l2.action=$action" \
        --cpus 4 --memory size=512M --seccomp true --user nobody "$@" > "$name.log" 2>&1
    echo $? > "$name.status"
}
refused() { # name, then arguments
    name=$1; shift
    timeout -k 10 60 "$vmm" --kernel "$cache/l2-vmlinux" --serial tty --console off "$@" > "$name.log" 2>&1
    echo $? > "$name.status"
}

# The mission's command: root on /dev/vda1 and the device, by its sysfs path.
seed edu edu --landlock --device path=/sys/bus/pci/devices/$edu1/
# Two devices in one --device list, the second by its bare address.
seed edu-two edu --device path=/sys/bus/pci/devices/$edu1 path=$edu2
# The guest reboots with the device assigned: it works in both boots.
seed edu-reboot edureboot --device path=/sys/bus/pci/devices/$edu1/

# An MSI-X device with a stock driver: L1's NVMe controller.
nvme=$(for d in /sys/bus/pci/devices/*; do
    [ "$(cat $d/vendor)" = 0x1b36 ] && [ "$(cat $d/device)" = 0x0010 ] && basename $d; done | head -1)
seed nvme nvme --device path=/sys/bus/pci/devices/$nvme/

# bind=auto: the NVMe controller on L1's own nvme driver first; the VMM
# moves it to vfio-pci and gives it back after a power-off, a SIGTERM and
# a launch that fails after the move. NAME.check holds L1's driver after.
. "$(dirname "$0")/common.sh"
kver=$(ls "$cache/l1-kernel/lib/modules")
echo "$nvme" > /sys/bus/pci/drivers/vfio-pci/unbind
for m in $(modprobe -d "$cache/l1-kernel" -S "$kver" --show-depends nvme | awk '$1=="insmod"{print $2}'); do insmod "$m" 2>/dev/null; done
driver() { basename "$(readlink /sys/bus/pci/devices/$nvme/driver)" 2>/dev/null; }
driver > nvme-auto-before.check
refused preflight-other-driver --device path=/sys/bus/pci/devices/$nvme/
seed nvme-auto nvme --device path=/sys/bus/pci/devices/$nvme/,bind=auto
driver > nvme-auto.check
seed nvme-auto-sigterm sigterm --device path=$nvme,bind=auto &
wait_for nvme-auto-sigterm.log "L2: flushed" 1 && sleep 1
pkill -TERM -f "vfio-lab/disk.raw.*l2.action=sigterm"
wait
driver > nvme-auto-sigterm.check
refused nvme-auto-failed --memory size=8M --device path=$nvme,bind=auto
driver > nvme-auto-failed.check
# Back to vfio-pci for anything after.
echo "$nvme" > /sys/bus/pci/drivers/nvme/unbind
echo "$nvme" > /sys/bus/pci/drivers/vfio-pci/bind

# Preflight: each refused before anything runs, with the fix.
refused preflight-twice --device path=/sys/bus/pci/devices/$edu1/ path=$edu1
refused preflight-missing --device path=/sys/bus/pci/devices/0000:00:1e.7/
# Behind the bridge: its group also holds a virtio-rng on L1's virtio-pci driver.
refused preflight-group --device path=/sys/bus/pci/devices/$edu_bridged/
# With the rng on vfio-pci too the group is viable, but its two functions
# cannot be split across the virtual IOMMU (one DMA address space).
rng=$(for d in /sys/bus/pci/devices/*; do
    [ "$(cat $d/vendor)" = 0x1af4 ] && [ "$(cat $d/device)" = 0x1005 ] && basename $d; done)
echo "$rng" > /sys/bus/pci/drivers/virtio-pci/unbind
echo vfio-pci > /sys/bus/pci/devices/$rng/driver_override
echo "$rng" > /sys/bus/pci/drivers/vfio-pci/bind
refused preflight-group-iommu --device path=/sys/bus/pci/devices/$edu_bridged/ path=$rng,iommu=on
echo "$rng" > /sys/bus/pci/drivers/vfio-pci/unbind
echo > /sys/bus/pci/devices/$rng/driver_override
echo "$rng" > /sys/bus/pci/drivers_probe
echo "$edu2" > /sys/bus/pci/drivers/vfio-pci/unbind
refused preflight-driverless --device path=/sys/bus/pci/devices/$edu2/
echo "$edu2" > /sys/bus/pci/drivers/vfio-pci/bind
