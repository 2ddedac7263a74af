#!/bin/busybox sh
# L2's init, inside the VMM under test: reports what the lab tests check,
# then powers off through ACPI (the VMM must exit 0).
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
echo "L2: userspace up"
echo "L2: nproc=$(nproc)"
echo "L2: $(grep MemTotal /proc/meminfo | tr -s ' ')"
action=$(sed -n 's/.*l2\.action=\([a-z]*\).*/\1/p' /proc/cmdline)
case "$action" in
    reboot) echo "L2: rebooting"; reboot -f ;;
    echo)
        echo "L2: waiting for input"
        read -r line
        echo "L2: got [$line]"
        poweroff -f ;;
    *) echo "L2: powering off"; poweroff -f ;;
esac
