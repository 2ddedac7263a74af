#!/bin/sh
# Runs inside L1 (lab/run.sh): the virtual IOMMU, with Debian 13's cloud
# kernel as L2 (its virtio-iommu driver), confined as a production launch
# is. The edu and the root disk are behind the IOMMU: the guest's virtio-blk
# maps each request through it, and a userspace driver on the guest's own
# vfio-pci does DMA through its own mappings (lab/guest/viommu_dma.c). Then
# the same with the edu hot-added (vm.add-device, "iommu": true) onto a
# segment that is behind the IOMMU whole. Each scenario leaves NAME.log and
# NAME.status; the hotplug's request and answer go to viommu-hotplug.check.
# iommu.strict=1: Debian 13's kernel may hang at power-off with lazy IOTLB
# flushes — its flush-queue timer sends the virtio-iommu a request after
# device_shutdown() broke its queue, and waits for the answer forever with
# interrupts off (seen here one power-off in three, and not a VMM matter:
# the guest's own queue is broken). Strict flushing sends no late request.
# Usage: viommu.sh VMM CACHE
vmm=$1 cache=$2
. "$(dirname "$0")/common.sh"
work=/run/viommu-lab
mkdir -p $work
edu=$(edus | head -1)
launch() { # name, then arguments
    name=$1; shift
    cp "$cache/l2-disk.raw" $work/disk.raw
    timeout -k 10 400 "$vmm" --kernel "$cache/l2-trixie-bzImage" --initramfs "$cache/l2-trixie-initramfs.cpio" \
        --cmdline "console=ttyS0 root=/dev/vda1 rw panic=-1 quiet iommu.strict=1 l2.action=viommu" \
        --console off --serial tty --cpus 2 --memory size=512M --seccomp true --user nobody "$@" > "$name.log" 2>&1
    echo $? > "$name.status"
}
launch viommu --disk path=$work/disk.raw,iommu=on --device path=/sys/bus/pci/devices/$edu/,iommu=on

# A device hot-added to a VMM running as nobody is opened by nobody: its
# group's node is given to that user first, as an operator would.
group=/dev/vfio/$(basename "$(readlink /sys/bus/pci/devices/$edu/iommu_group)")
chown nobody $group
sock=$work/api.sock
rm -f $sock
launch viommu-hotplug --api-socket path=$sock --platform "num_pci_segments=2,iommu_segments=[1]" \
    --disk path=$work/disk.raw &
wait_for viommu-hotplug.log "L2: waiting for an edu" 1
curl -s --max-time 60 --unix-socket $sock -X PUT -H 'Content-Type: application/json' -w ' HTTP=%{http_code}' \
    -d "{\"path\": \"/sys/bus/pci/devices/$edu/\", \"id\": \"edu0\", \"pci_segment\": 1, \"iommu\": true}" \
    http://localhost/api/v1/vm.add-device > viommu-hotplug.check 2>&1
wait
chown root $group
