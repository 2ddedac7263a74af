#!/bin/busybox sh
# L1's init: loads 9p, KVM and VFIO, mounts the host's root read-only and
# the run's writable share, binds the QEMU edu device to vfio-pci, runs the
# requested command in a chroot of the host root, and powers off.
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs dev /dev
for m in $(cat /modules/order); do insmod /modules/$m 2>/dev/null; done

out=$(sed -n 's/.*lab\.out=\([^ ]*\).*/\1/p' /proc/cmdline)
# The host root does not change during a run: L1 may cache it (every L2
# boot reads the VMM, a 53 MB kernel and the initramfs again otherwise).
mount -t 9p -o trans=virtio,version=9p2000.L,ro,cache=loose,msize=262144 host /host || { echo "LAB: cannot mount the host root"; poweroff -f; }
mount -t 9p -o trans=virtio,version=9p2000.L,rw out "/host$out" || { echo "LAB: cannot mount $out"; poweroff -f; }
mount -t proc proc /host/proc
mount -t sysfs sysfs /host/sys
mount -t devtmpfs dev /host/dev
mkdir -p /host/dev/pts 2>/dev/null; mount -t devpts devpts /host/dev/pts 2>/dev/null
mount -t tmpfs tmpfs /host/run
mount -t tmpfs tmpfs /host/dev/shm 2>/dev/null

# Test PCI devices QEMU adds (edu: 1234:11e8, NVMe: 1b36:0010, no driver
# of its own loaded here) go to vfio-pci, as Cloud Hypervisor's VFIO HOWTO does.
if [ -d /sys/bus/pci/drivers/vfio-pci ]; then
    echo 1234 11e8 > /sys/bus/pci/drivers/vfio-pci/new_id 2>/dev/null
    echo 1b36 0010 > /sys/bus/pci/drivers/vfio-pci/new_id 2>/dev/null
fi

# A lab that stops moving says why: every 5 minutes, the tasks blocked in
# the kernel and what each CPU runs, on the console.
echo 1 > /proc/sys/kernel/sysrq
( while sleep 300; do echo w > /proc/sysrq-trigger; echo l > /proc/sysrq-trigger; done ) &

echo "LAB: L1 ready"
chroot /host /bin/sh -c "cd '$out' && HOME=/root PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin /bin/sh '$out/command.sh'"
echo "LAB-EXIT=$?"
sync
poweroff -f
