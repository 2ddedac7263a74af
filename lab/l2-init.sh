#!/bin/busybox sh
# L2's init, inside the VMM under test: reports what the lab tests check,
# then powers off through ACPI (the VMM must exit 0).
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
echo "L2: userspace up"
# What udev would load for the VMM's ACPI devices (pvpanic: acpi:QEMU0001).
for m in $(cat /modules/order); do insmod /modules/$m; done
field() { grep "^$1" /proc/cpuinfo | cut -d: -f2 | tr -d ' ' | sort -un | tr '\n' ' ' | sed 's/ $//'; }
echo "L2: nproc=$(nproc)"
echo "L2: $(grep MemTotal /proc/meminfo | tr -s ' ')"
echo "L2: topology packages=[$(field 'physical id')] cores=[$(field 'cpu cores')] siblings=[$(field siblings)] apicids=[$(field apicid)]"
echo "L2: tsc_deadline_timer=$(grep -c -w tsc_deadline_timer /proc/cpuinfo)"
echo "L2: $(dmesg | grep -o 'x86/PAT: Configuration.*' | tr -s ' ')"
# Each kernel warning or oops by its headline, the line after "cut here".
dmesg | grep -A1 -e '-\[ cut here \]-' | grep -v -e 'cut here' -e '^--$' | sed 's/^/L2: kernel warning: /'
action=$(sed -n 's/.*l2\.action=\([a-z]*\).*/\1/p' /proc/cmdline)
case "$action" in
    reboot) echo "L2: rebooting"; reboot -f ;;
    panic) echo "L2: panicking"; echo c > /proc/sysrq-trigger ;;
    echo)
        echo "L2: waiting for input"
        read -r line
        echo "L2: got [$line]"
        poweroff -f ;;
    *) echo "L2: powering off"; poweroff -f ;;
esac
