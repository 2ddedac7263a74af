# Shared by the lab scenarios (sourced): how to wait for a line in a log,
# and which of L1's edu devices can be assigned.
# Waits, 300 s at most, until FILE has COUNT lines that contain TEXT.
wait_for() { # file, text, count[, pid: no longer once it has ended]
    tries=0
    while [ $tries -lt 1500 ]; do
        n=$(grep -c -F -e "$2" "$1" 2>/dev/null); [ "${n:-0}" -ge "$3" ] && return 0
        [ -n "$4" ] && ! kill -0 "$4" 2>/dev/null && return 1
        sleep 0.2; tries=$((tries + 1))
    done
    return 1
}
# L1's edu devices on vfio-pci, each alone in its IOMMU group (not the one
# behind the bridge, whose group also holds a virtio-rng).
edus() {
    for d in /sys/bus/pci/devices/*; do
        [ "$(cat $d/vendor)" = 0x1234 ] && [ "$(cat $d/device)" = 0x11e8 ] \
            && [ "$(basename "$(readlink $d/driver)")" = vfio-pci ] \
            && [ "$(ls $d/iommu_group/devices | wc -l)" = 1 ] && basename $d
    done
}
