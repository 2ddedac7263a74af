#!/bin/sh
# Runs inside L1 (lab/run.sh): an API-driven launch in the order Kata
# Containers uses, with Debian's curl on the socket: the VMM started with
# --api-socket alone, vm.create with a whole VmConfig, vm.info, vm.add-net
# with a tap over SCM_RIGHTS, vm.boot, then pause/resume, vCPU hotplug both
# ways, memory hotplug, disk and VFIO hotplug both ways, reboot and the
# power button on a running Linux guest. As Kata's pod sandbox: the VM has
# a vsock (its agent reached on port 1024 through the hybrid socket) and a
# virtio-fs share (virtiofsd, kataShared, on PCI segment 1). Then a command-line launch with
# the API: its --device removed and added back, another hot-added beside
# it, and vmm.shutdown.
# Leaves api.log (the guest's serial console), api.status (the VMM's exit
# status), api.check (each request and its answer) and api-vmm.log.
# Usage: api.sh VMM CACHE
vmm=$1 cache=$2
here=$(dirname "$0")
. "$here/common.sh"
work=/run/api-lab
mkdir -p $work
sock=$work/api.sock
cp "$cache/l2-disk.raw" $work/disk.raw
: > api.check
# Kata's share: virtiofsd serving a directory the guest mounts as kataShared.
mkdir -p $work/share; echo "shared by the pod" > $work/share/kata.txt
/usr/lib/qemu/virtiofsd --socket-path=$work/fs.sock -o source=$work/share -o cache=none -o sandbox=chroot -o log_level=err &
fsd=$!
tries=0; until [ -S $work/fs.sock ] || [ $tries -ge 50 ]; do sleep 0.1; tries=$((tries + 1)); done
config() { # serial log, landlock_enable, landlock_rules
    echo "{
  \"payload\": {\"kernel\": \"$cache/l2-vmlinux\", \"initramfs\": \"$cache/l2-initramfs.cpio\",
                \"cmdline\": \"console=ttyS0 root=/dev/vda1 rw quiet panic=-1 l2.action=api\"},
  \"cpus\": {\"boot_vcpus\": 1, \"max_vcpus\": 4, \"kvm_hyperv\": false,
           \"topology\": {\"threads_per_core\": 1, \"cores_per_die\": 4, \"dies_per_package\": 1, \"packages\": 1}},
  \"memory\": {\"size\": 536870912, \"shared\": true, \"hugepages\": false, \"hotplug_method\": \"Acpi\", \"hotplug_size\": 1073741824, \"thp\": true},
  \"disks\": [{\"path\": \"$work/disk.raw\", \"readonly\": false, \"direct\": false, \"iommu\": false, \"image_type\": \"Raw\",
               \"num_queues\": 1, \"queue_size\": 128, \"vhost_user\": false, \"id\": \"_disk0\", \"rate_limiter_config\": null}],
  \"rng\": {\"src\": \"/dev/urandom\", \"iommu\": false},
  \"serial\": {\"mode\": \"File\", \"file\": \"$PWD/$1\"},
  \"console\": {\"mode\": \"Off\", \"iommu\": false},
  \"platform\": {\"num_pci_segments\": 2, \"iommu_segments\": null},
  \"vsock\": {\"cid\": 3, \"socket\": \"$work/kata.hvsock\", \"iommu\": false, \"pci_segment\": 0, \"id\": null},
  \"fs\": [{\"tag\": \"kataShared\", \"socket\": \"$work/fs.sock\", \"num_queues\": 1, \"queue_size\": 1024, \"pci_segment\": 1}],
  \"iommu\": false, \"watchdog\": false, \"pvpanic\": false,
  \"landlock_enable\": $2, \"landlock_rules\": $3,
  \"kata_sandbox_extra\": {\"ignored\": true}
}"
}
# 120 s an answer: the first VFIO hot-add pins all of guest RAM, which in a
# slow L1 (another L1 and the host's tests beside it) took over 30 s.
api() { # method, endpoint[, body]: one request, its status and body to api.check
    if [ -n "$3" ]; then
        out=$(curl -s --max-time 120 --unix-socket $sock -X "$1" -H 'Content-Type: application/json' \
            --data-binary "$3" -w ' HTTP=%{http_code}' "http://localhost/api/v1/$2")
    else
        out=$(curl -s --max-time 120 --unix-socket $sock -X "$1" -w ' HTTP=%{http_code}' "http://localhost/api/v1/$2")
    fi
    echo "$2: $out" >> api.check
}
ticks() { grep -c "L2: tick" api.log 2>/dev/null || echo 0; }
# The VMM's vCPU threads ($pid is timeout's: the VMM is its child).
vcpu_threads() {
    for stat in /proc/[0-9]*/stat; do
        set -- $(cat $stat 2>/dev/null)
        [ "$4" = "$pid" ] && cat /proc/$1/task/*/comm 2>/dev/null | grep -c '^vcpu' && return
    done
    echo none
}
# Waits, 10 s at most, until the VMM has N vCPU threads.
threads_settle() { # N
    tries=0
    until [ "$(vcpu_threads)" = "$1" ] || [ $tries -ge 50 ]; do sleep 0.2; tries=$((tries + 1)); done
}
# Waits, 30 s at most, until the guest's latest lines match PATTERN.
latest() { # pattern [log]
    tries=0
    while [ $tries -lt 150 ]; do
        tail -n 2 "${2:-api.log}" | grep -q "$1" && return 0
        sleep 0.2; tries=$((tries + 1))
    done
    return 1
}
# The VMM's locked memory in kB: guest RAM pinned for VFIO DMA counts there.
locked() {
    for stat in /proc/[0-9]*/stat; do
        set -- $(cat $stat 2>/dev/null)
        [ "$4" = "$pid" ] && awk '/^VmLck/ {print $2}' /proc/$1/status && return
    done
}

# 900 s: on a slow day this VM's half of the scenario alone took 310 s.
timeout -k 10 900 "$vmm" --api-socket "path=$sock" -v > api-vmm.log 2>&1 &
pid=$!
tries=0
until [ -S $sock ] || [ $tries -ge 100 ]; do sleep 0.1; tries=$((tries + 1)); done
api GET vmm.ping
# Shaped as Kata's: payload, cpus, memory (shared), a disk, rng, consoles,
# platform, and fields this VMM does not know, which it must ignore.
# Landlock, with rules for what is hot-added later: a disk, a VFIO device.
api PUT vm.create "$(config api.log true "[{\"path\": \"$work\", \"access\": \"r\"}, {\"path\": \"/dev/vfio\", \"access\": \"rw\"}, {\"path\": \"/sys\", \"access\": \"r\"}]")"
api GET vm.info
# Kata opens the tap and hands it over on the API connection; the NIC goes
# on PCI segment 1, as Kata puts devices there.
python3 "$here/tapfd.py" labtap-api 192.168.251.1/24 -- python3 "$here/apisend.py" $sock vm.add-net \
    '{"mac": "12:34:56:78:90:ad", "num_queues": 2, "queue_size": 256, "id": "_net0", "pci_segment": 1}' {fd} >> api.check
api PUT vm.boot
api GET vm.info
wait_for api.log "L2: tick" 10 || echo "api: no ticks before the pause" >> api.check
# Kata's runtime reaches its agent: CONNECT 1024 on the hybrid socket.
if wait_for api.log "L2: api agent listening" 1; then
    python3 -c '
import socket, sys
s = socket.socket(socket.AF_UNIX); s.settimeout(30); s.connect(sys.argv[1]); s.sendall(b"CONNECT 1024\n")
line = b""
while not line.endswith(b"\n"):
    byte = s.recv(1)
    if not byte: break
    line += byte
s.sendall(b"ping from the runtime"); s.shutdown(socket.SHUT_WR)
back = b""
while True:
    chunk = s.recv(4096)
    if not chunk: break
    back += chunk
print("agent: %s [%s]" % (line.decode().strip(), back.decode()))
' $work/kata.hvsock >> api.check 2>&1
fi
api PUT vm.pause
api GET vm.info
paused=$(ticks); sleep 3; after=$(ticks)
echo "pause: ticks $paused then $after after 3 s" >> api.check
api PUT vm.resume
wait_for api.log "L2: tick" $((after + 10)) && echo "resume: ticks go on" >> api.check
# vCPU hotplug: the guest onlines what arrives (as Kata's agent does) and
# offlines and ejects what the VMM asks back.
api PUT vm.resize '{"desired_vcpus": 3}'
latest "cpus=3" && echo "resize: the guest has 3 vCPUs online" >> api.check
threads_settle 3; echo "resize: vcpu threads $(vcpu_threads)" >> api.check
api GET vm.info
api PUT vm.resize '{"desired_vcpus": 1}'
latest "cpus=1" && echo "resize: the guest is down to 1 vCPU" >> api.check
threads_settle 1; echo "resize: vcpu threads $(vcpu_threads)" >> api.check
# Disk hotplug onto segment 1: the guest's ACPI PCI hotplug (acpiphp) finds
# the disk, and lets it go when asked.
truncate -s 16M $work/hot.raw; printf 'hotplugged disk' | dd of=$work/hot.raw conv=notrunc status=none
api PUT vm.add-disk "{\"path\": \"$work/hot.raw\", \"id\": \"hot0\", \"readonly\": true, \"pci_segment\": 1}"
wait_for api.log "L2: vdb says [hotplugged disk]" 1 && echo "add-disk: the guest reads vdb" >> api.check
api GET vm.counters
api PUT vm.remove-device "{\"id\": \"hot0\"}"
latest "disks=\[vda \]" && echo "remove-device: the guest let vdb go" >> api.check
# VFIO hotplug: one of L1's edu devices, which the guest then uses.
edu=$(edus | head -1)
api PUT vm.add-device "{\"path\": \"/sys/bus/pci/devices/$edu/\", \"id\": \"edu0\"}"
wait_for api.log "factorial(10)=3628800" 1 && echo "add-device: the guest uses the edu" >> api.check
# Memory hotplug: 256M more, which the guest onlines, with the edu
# assigned (the new RAM mapped for its DMA too). After the edu's test,
# whose DMA needs user pages below 256M: once the new RAM (above 4G) is
# online, the guest's allocator prefers it.
mem() { grep "L2: tick" api.log | tail -n 1 | sed -n 's/.* mem=\([0-9]*\).*/\1/p'; }
before=$(mem)
api PUT vm.resize '{"desired_ram": 805306368}'
tries=0
until [ "$(mem)" -ge $((before + 250000)) ] 2>/dev/null || [ $tries -ge 150 ]; do sleep 0.2; tries=$((tries + 1)); done
echo "resize: MemTotal $before kB then $(mem) kB" >> api.check
api PUT vm.remove-device "{\"id\": \"edu0\"}"
latest "edus=0" && echo "remove-device: the guest let the edu go" >> api.check
api GET vm.info
api PUT vm.reboot
wait_for api.log "L2: userspace up" 2 && echo "reboot: the guest came up again" >> api.check
# The second boot's own ticks (numbered from 1 each boot): its power-button
# watcher, which starts before them, is listening by then. A count of all
# ticks was met by the first boot's alone, and a press before the watcher
# opened its device was lost.
wait_for api.log "L2: tick 3 " 2
api GET vm.info
# The power button: the guest powers itself off, and with it the VMM ends.
api PUT vm.power-button
wait $pid
echo $? > api.status
[ -e $sock ] && echo "api: the socket file is still there" >> api.check
[ -e $work/kata.hvsock ] && echo "api: the vsock socket file is still there" >> api.check
kill $fsd 2>/dev/null; wait $fsd 2>/dev/null

# A command line's --device is a device like any other: removed from the
# running guest and added back. A second device hot-added beside it joins
# the VMM's one VFIO container: guest RAM is pinned for DMA once (the VMM's
# locked memory does not grow); it goes on segment 1. Then the guest's
# clock across 20 unplugs, and Kata's way to stop: vmm.shutdown with the
# guest running. The guest's console comes through stamp.py: each line led
# by L1's clock when it arrived.
set -- $(edus)
cp "$cache/l2-disk.raw" $work/disk.raw
rm -f $work/serial2; mkfifo $work/serial2
python3 "$here/stamp.py" < $work/serial2 > api2.log &
timeout -k 10 900 "$vmm" --api-socket "path=$sock" --kernel "$cache/l2-vmlinux" --initramfs "$cache/l2-initramfs.cpio" \
    --disk path=$work/disk.raw --cmdline "console=ttyS0 root=/dev/vda1 rw quiet panic=-1 l2.action=api" \
    --serial tty --console off --cpus 1 --memory size=512M --seccomp true --platform num_pci_segments=2 \
    --device "path=/sys/bus/pci/devices/$1/,id=cli0" -v < /dev/null > $work/serial2 2> api-vmm2.log &
pid=$!
tries=0
until [ -S $sock ] || [ $tries -ge 100 ]; do sleep 0.1; tries=$((tries + 1)); done
# The guest probes every edu it has each time their number grows: 1, then 2, then 2 again.
wait_for api2.log "factorial(10)=3628800" 1 && echo "cli device: the guest uses it" >> api.check
before=$(locked)
api PUT vm.add-device "{\"path\": \"/sys/bus/pci/devices/$2/\", \"id\": \"hot1\", \"pci_segment\": 1}"
wait_for api2.log "factorial(10)=3628800" 3 && echo "add-device: the guest uses both edus" >> api.check
echo "one container: VmLck $before kB then $(locked) kB" >> api.check
api PUT vm.remove-device '{"id": "cli0"}'
latest "edus=1" api2.log && echo "remove-device: the guest let the command line's edu go" >> api.check
api PUT vm.add-device "{\"path\": \"/sys/bus/pci/devices/$1/\", \"id\": \"cli0\"}"
wait_for api2.log "factorial(10)=3628800" 5 && echo "add-device: the command line's edu is back" >> api.check
api GET vm.info
# The guest's CLOCK_REALTIME against L1's across 20 unplugs: a device's
# removal parks the vCPUs without holding the guest's clock, so the offset
# (the smallest of a window's ticks: the least delayed) does not move.
offset() { # the window's lines: from, to
    sed -n "$1,$2p" api2.log | awk '/L2: tick/ { for (i = 1; i <= NF; i++) if ($i ~ /^rt=/) {
        d = $1 - substr($i, 4); if (n++ == 0 || d < m) m = d } } END { printf "%.1f", m * 1000 }'
}
from=$(wc -l < api2.log); sleep 8; to=$(wc -l < api2.log)
before=$(offset $((from + 1)) $to)
unplugs=0
for i in $(seq 20); do
    curl -s --max-time 30 --unix-socket $sock -X PUT -d "{\"path\": \"$work/hot.raw\", \"id\": \"tick$i\", \"readonly\": true}" \
        -w ' HTTP=%{http_code}\n' http://localhost/api/v1/vm.add-disk >> api-clock.log
    latest "disks=\[vda vdb \]" api2.log || { echo "clock: unplug $i: the guest did not find the disk" >> api.check; break; }
    curl -s --max-time 30 --unix-socket $sock -X PUT -d "{\"id\": \"tick$i\"}" -w ' HTTP=%{http_code}\n' http://localhost/api/v1/vm.remove-device >> api-clock.log
    latest "disks=\[vda \]" api2.log || { echo "clock: unplug $i: the guest kept the disk" >> api.check; break; }
    # Gone once the VMM has taken the guest's eject: only then is the image free again.
    tries=0
    while curl -s --max-time 30 --unix-socket $sock http://localhost/api/v1/vm.info | grep -q "\"tick$i\"" \
        && [ $tries -lt 150 ]; do sleep 0.2; tries=$((tries + 1)); done
    unplugs=$i
done
from=$(wc -l < api2.log); sleep 8; to=$(wc -l < api2.log)
echo "clock: $unplugs unplugs, guest clock offset $before ms then $(offset $((from + 1)) $to) ms" >> api.check
wait_for api2.log "L2: tick" 3 || echo "api: the second VM did not tick" >> api.check
api PUT vmm.shutdown
wait $pid
echo "vmm.shutdown with the guest running: exit $?" >> api.check
rm -rf $work
