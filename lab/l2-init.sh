#!/bin/busybox sh
# L2's init, inside the VMM under test: reports what the lab tests check,
# then powers off through ACPI (the VMM must exit 0). The same script is
# the initramfs's /init and the disk's /sbin/init: with root= on the
# command line, the initramfs loads the drivers and switches to that root.
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc 2>/dev/null
mount -t sysfs sysfs /sys 2>/dev/null
mount -t devtmpfs dev /dev 2>/dev/null
arg() { sed -n "s/.*$1=\([^ ]*\).*/\1/p" /proc/cmdline; }
if [ -d /modules ]; then
    # What udev would load: pvpanic (acpi:QEMU0001), virtio over PCI, ext4.
    for m in $(cat /modules/order); do insmod /modules/$m; done
    root=$(arg root)
    if [ -n "$root" ]; then
        mode=ro; grep -qw rw /proc/cmdline && mode=rw
        mkdir -p /newroot
        tries=0
        until [ -b "$root" ] || [ $tries -ge 50 ]; do sleep 0.1; tries=$((tries + 1)); done
        mount -t ext4 -o $mode "$root" /newroot || { echo "L2: cannot mount $root"; poweroff -f; }
        umount /proc /sys /dev 2>/dev/null
        exec switch_root /newroot /sbin/init
    fi
fi
echo "L2: userspace up"
echo "L2: root=$(awk '$2=="/"{print $1" "$3" "$4}' /proc/mounts | tail -1 | cut -d, -f1)"
field() { grep "^$1" /proc/cpuinfo | cut -d: -f2 | tr -d ' ' | sort -un | tr '\n' ' ' | sed 's/ $//'; }
echo "L2: nproc=$(nproc)"
echo "L2: $(grep MemTotal /proc/meminfo | tr -s ' ')"
echo "L2: topology packages=[$(field 'physical id')] cores=[$(field 'cpu cores')] siblings=[$(field siblings)] apicids=[$(field apicid)]"
echo "L2: tsc_deadline_timer=$(grep -c -w tsc_deadline_timer /proc/cpuinfo)"
echo "L2: $(dmesg | grep -o 'x86/PAT: Configuration.*' | tr -s ' ')"
echo "L2: rtc $(cat /sys/class/rtc/rtc0/name 2>/dev/null) $(cat /sys/class/rtc/rtc0/date 2>/dev/null)"
for d in /sys/bus/pci/devices/*; do
    echo "L2: pci $(basename $d) $(cat $d/vendor):$(cat $d/device) class=$(cat $d/class) driver=$(basename $(readlink $d/driver) 2>/dev/null) bar0=$(head -1 $d/resource | cut -d' ' -f1)"
done
# Kernel warnings and oopses by their headline, and PCI/ACPI complaints.
dmesg | grep -A1 -e '-\[ cut here \]-' | grep -v -e 'cut here' -e '^--$' | sed 's/^/L2: kernel warning: /'
dmesg | grep -i -e 'pci.*\(fatal\|fail\|error\|conflict\|not reserved\|can.t\)' -e 'acpi.*\(error\|warning\|fail\)' \
    | sed 's/^/L2: pci-acpi complaint: /'
action=$(arg l2.action)
case "$action" in
    reboot) echo "L2: rebooting"; reboot -f ;;
    api)
        # Lines at a steady pace with the guest's own clock, for as long as
        # the VMM lets it run: the API test pauses, resumes and reboots it.
        # The ACPI power button powers it off, as a distribution's logind
        # would: its input device's first event is the press.
        for e in /sys/class/input/event*; do
            grep -q "Power Button" "$e/device/name" 2>/dev/null || continue
            echo "L2: power button at /dev/input/${e##*/}"
            ( dd if="/dev/input/${e##*/}" of=/dev/null bs=24 count=1 2>/dev/null
              echo "L2: power button pressed: powering off"; sync; poweroff -f ) &
        done
        # Kata's pod: its share mounted, its agent listening on vsock port 1024.
        if grep -q 0x105a /sys/bus/pci/devices/*/device; then
            mkdir -p /mnt && mount -t virtiofs kataShared /mnt && echo "L2: api share [$(cat /mnt/kata.txt)]"
        fi
        if grep -q 0x1053 /sys/bus/pci/devices/*/device; then
            vsocktest echo 1024 1 > /dev/null 2>&1 &
            sleep 0.5; echo "L2: api agent listening"
        fi
        # The NIC vm.add-net gave before boot: one ping to the tap's end.
        for n in /sys/class/net/eth*; do
            [ "$(cat $n/address 2>/dev/null)" = 12:34:56:78:90:ad ] || continue
            ip addr add 192.168.251.2/24 dev ${n##*/} && ip link set ${n##*/} up
            echo "L2: api net ${n##*/} queues=$(ls $n/queues | grep -c rx-) ping $(ping -c 1 -W 5 192.168.251.1 | grep -o '[0-9]* packets received')"
        done
        # Each line names the virtio disks the guest has: hotplug adds and
        # takes them; a new one's first bytes are read once. Hot-added
        # vCPUs and memory are onlined, as Kata's agent does; the counts
        # end the line.
        i=0 seen="" edus_seen=0 cpus_seen=$(nproc)
        while true; do
            i=$((i + 1))
            for c in /sys/devices/system/cpu/cpu[0-9]*/online; do
                # A vCPU being ejected may be gone by the write.
                [ "$(cat $c 2>/dev/null)" = 0 ] && { echo 1 > $c; } 2>/dev/null
            done
            # Hot-added memory blocks too, as Kata's agent onlines them.
            for m in /sys/devices/system/memory/memory*/state; do
                [ "$(cat $m 2>/dev/null)" = offline ] && { echo online > $m; } 2>/dev/null
            done
            disks=$(ls /sys/block | grep '^vd' | tr '\n' ' ')
            edus=$(cat /sys/bus/pci/devices/*/device 2>/dev/null | grep -c 0x11e8)
            cpus=$(nproc)
            if [ "$cpus" != "$cpus_seen" ]; then
                dmesg | grep -i -e 'acpi.*\(error\|warning\|fail\)' -e 'eject incomplete' -e 'WARNING:' -e 'cpu.*\(fail\|stuck\)' \
                    | sed 's/^/L2: cpu hotplug complaint: /'
                cpus_seen=$cpus
            fi
            echo "L2: tick $i $(cut -d' ' -f1 /proc/uptime) rt=$(realtime) disks=[$disks] edus=$edus cpus=$cpus mem=$(awk '/MemTotal/ {print $2}' /proc/meminfo)"
            # A hot-added edu is used once: BAR, DMA both ways.
            if [ "$edus" -gt "$edus_seen" ]; then edutest probe; fi
            edus_seen=$edus
            for d in $disks; do
                case " $seen " in *" $d "*) ;; *) seen="$seen $d"; echo "L2: $d says [$(head -c 15 /dev/$d 2>/dev/null)]" ;; esac
            done
            sleep 0.2
        done ;;
    uevent)
        # Learns of a hot-added edu device as a distribution's udev does,
        # from the kernel's uevent, with no polling to take the CPU the
        # VMM's work needs (bench/vfio_hotplug.py); uses it once, as api's
        # loop does. A second for the listener to bind its socket first.
        uevent sh -c '[ "$ACTION $SUBSYSTEM $PCI_ID" = "add pci 1234:11E8" ] || exit 0
            echo "L2: uevent edu added $PCI_SLOT_NAME"; edutest probe' &
        sleep 1; echo "L2: uevent listening"
        wait ;;
    panic) echo "L2: panicking"; echo c > /proc/sysrq-trigger ;;
    echo)
        echo "L2: waiting for input"
        read -r line
        echo "L2: got [$line]"
        poweroff -f ;;
    disk)
        # Each virtio vector with its delivery count summed over the vCPUs.
        grep virtio /proc/interrupts | awk '{n=0; for (i=2; i<=NF; i++) if ($i ~ /^[0-9]+$/) n+=$i; else break; print "L2: irq " $NF " " $(NF-2) " count=" n}'

        echo "L2: hwrng $(cat /sys/class/misc/hw_random/rng_current 2>/dev/null) $(head -c 16 /dev/hwrng | od -An -tx1 | tr -d ' ')"
        echo "written by L2 $(cat /proc/sys/kernel/random/boot_id)" > /l2-written.txt
        sync
        echo "L2: wrote $(cat /l2-written.txt)"
        dmesg | grep -o 'virtio_blk virtio[0-9]*: [0-9/]* default/read/poll queues' | sed 's/^/L2: /'
        if [ -b /dev/vdb ]; then
            echo "L2: vdb ro=$(cat /sys/block/vdb/ro) size=$(cat /sys/block/vdb/size) serial=$(cat /sys/block/vdb/serial 2>/dev/null)"
            if dd if=/dev/zero of=/dev/vdb bs=4096 count=1 oflag=direct 2>/dev/null; then echo "L2: vdb write allowed"; else echo "L2: vdb write refused"; fi
            echo "L2: vdb reads $(head -c 16 /dev/vdb | od -An -c | tr -d ' ')"
        fi
        poweroff -f ;;
    hvc)
        echo "L2: hvc0 waiting"
        echo "L2: hello on hvc0" > /dev/hvc0
        read -r line < /dev/hvc0
        echo "L2: hvc0 got [$line]"
        poweroff -f ;;
    blkbench)
        blkbench /dev/vdb
        poweroff -f ;;
    edu)
        edutest probe
        edutest intx
        # MSI through the lab's edu driver, once uio_pci_generic lets go.
        for d in /sys/bus/pci/drivers/uio_pci_generic/0000:*; do echo "${d##*/}" > /sys/bus/pci/drivers/uio_pci_generic/unbind; done
        insmod /lib/edu_irq.ko msi=1 2>/dev/null
        dmesg | grep -o 'edu_irq 0000:[0-9a-f:.]*: msi interrupts=.*' | sed 's/^/L2: /'
        poweroff -f ;;
    nvme)
        # The stock NVMe driver (built in) on the assigned controller.
        for d in /sys/bus/pci/devices/*; do
            [ "$(cat $d/vendor)" = 0x1b36 ] && [ "$(cat $d/device)" = 0x0010 ] && \
                echo "L2: nvme $(basename $d) driver=$(basename $(readlink $d/driver) 2>/dev/null) bar0=$(cut -d' ' -f1 $d/resource | head -1)"
        done
        tries=0; until [ -b /dev/nvme0n1 ] || [ $tries -ge 100 ]; do sleep 0.1; tries=$((tries + 1)); done
        echo "L2: nvme reads [$(dd if=/dev/nvme0n1 bs=512 count=1 iflag=direct 2>/dev/null | head -c 18)]"
        grep nvme /proc/interrupts | awk '{n=0; for (i=2; i<=NF; i++) if ($i ~ /^[0-9]+$/) n+=$i; else break; print "L2: irq " $NF " " $(NF-2) " count=" n}'
        poweroff -f ;;
    barbench)
        barbench 1234 11e8 mapped
        # A BAR a driver holds cannot be mapped from userspace (strict devmem).
        for d in /sys/bus/pci/drivers/nvme/0000:*; do echo "${d##*/}" > /sys/bus/pci/drivers/nvme/unbind; done
        barbench 1b36 0010 msix
        poweroff -f ;;
    viommu)
        # Behind the virtual IOMMU (Debian 13's kernel): the edu, on the
        # command line or hot-added (awaited), goes to the guest's own
        # vfio-pci, and a userspace driver maps its DMA (viommu_dma). x86's
        # MSIs are not remapped here: VFIO must be told that is fine.
        tries=0
        until grep -qs 0x11e8 /sys/bus/pci/devices/*/device || [ $tries -ge 1500 ]; do
            [ $tries = 0 ] && echo "L2: waiting for an edu"
            sleep 0.2; tries=$((tries + 1))
        done
        # A function joins its group when a driver binds it: the edu's is
        # there once vfio-pci has it.
        echo 1 > /sys/module/vfio_iommu_type1/parameters/allow_unsafe_interrupts
        echo 1234 11e8 > /sys/bus/pci/drivers/vfio-pci/new_id
        echo "L2: iommu $(ls /sys/class/iommu 2>/dev/null | tr '\n' ' ')"
        for g in /sys/kernel/iommu_groups/*; do echo "L2: iommu group ${g##*/}: $(ls $g/devices | tr '\n' ' ')"; done
        # l2.viommu=bench,5: bench/viommu.py's measure instead of the checks.
        viommu_dma $(arg l2.viommu | tr , ' ')
        sync
        poweroff -f ;;
    edureboot)
        # The root file system carries over: the second boot powers off.
        edutest probe
        if [ -e /edu-rebooted ]; then rm /edu-rebooted; sync; poweroff -f; fi
        touch /edu-rebooted; sync
        echo "L2: rebooting with the device assigned"; reboot -f ;;
    net)
        # The lab's interfaces by their MAC: ...:ab is the VMM's tap (tap=,
        # 192.168.249.0/24), ...:ac the one the test opened (fd=, 192.168.250.0/24).
        for i in /sys/class/net/eth*; do
            n=${i##*/}; mac=$(cat $i/address)
            case $mac in 12:34:56:78:90:ab) net=249 ;; 12:34:56:78:90:ac) net=250 ;; *) continue ;; esac
            ip addr add 192.168.$net.2/24 dev $n && ip link set $n up
            echo "L2: net $n mac=$mac mtu=$(cat $i/mtu) rx=$(ls $i/queues | grep -c rx-) tx=$(ls $i/queues | grep -c tx-) driver=$(basename $(readlink $i/device/driver)) mrg_rxbuf=$(cut -c16 $i/device/features)"
        done
        # From every vCPU: the transmit queue is the CPU's, the reply comes back on its pair.
        for c in $(seq 0 $(($(nproc) - 1))); do
            echo "L2: ping 192.168.249.1 cpu$c $(taskset -c $c ping -c 2 -W 5 192.168.249.1 | grep -o '[0-9]* packets received')"
        done
        echo "L2: ping 192.168.249.1 jumbo $(ping -c 2 -W 5 -s 8000 192.168.249.1 | grep -o '[0-9]* packets received')"
        echo "L2: ping 192.168.250.1 $(ping -c 2 -W 5 192.168.250.1 | grep -o '[0-9]* packets received')"
        # A payload from L1 and back: TCP through the offloads both ways.
        mkdir -p /tmp
        # The sleep keeps nc's input open (at its end nc would half-close
        # before L1 sent anything); done is marked when nc ends, not the
        # pipeline, which waits for the sleep: 200 s lost in every run.
        sleep 200 | { nc -l -p 7781 > /tmp/payload; touch /tmp/payload.done; } &
        # Ready only once the listener is: on a slow machine L1 came knocking first.
        tries=0; until netstat -ltn | grep -q ':7781 ' || [ $tries -ge 100 ]; do sleep 0.1; tries=$((tries + 1)); done
        echo "L2: net ready"
        tries=0; until [ -e /tmp/payload.done ] || [ $tries -ge 1000 ]; do sleep 0.2; tries=$((tries + 1)); done
        echo "L2: received $(wc -c < /tmp/payload) bytes md5=$(md5sum < /tmp/payload | cut -d' ' -f1)"
        tries=0; until nc 192.168.249.1 7782 < /tmp/payload || [ $tries -ge 10 ]; do sleep 1; tries=$((tries + 1)); done
        [ $tries -lt 10 ] && echo "L2: sent back"
        grep virtio /proc/interrupts | awk '{n=0; for (i=2; i<=NF; i++) if ($i ~ /^[0-9]+$/) n+=$i; else break; print "L2: irq " $NF " count=" n}'
        poweroff -f ;;
    migrate)
        # lab/tests/migration.sh moves this guest between VMMs while it
        # runs: a 48 MiB random pattern in RAM, a tick on the console every
        # 100 ms with both clocks (the host stamps each line: the longest
        # gap), a TCP connection from L1 through the tap, and a line per
        # migration on the disk. At each "check NAME" line on the console
        # it reports, and "done" powers it off.
        ip addr add 192.168.249.2/24 dev eth0 && ip link set eth0 up
        mkdir -p /tmp && mount -t tmpfs -o size=64m tmpfs /tmp
        dd if=/dev/urandom of=/tmp/pattern bs=1M count=48 2>/dev/null
        echo "L2: migrate pattern $(md5sum < /tmp/pattern | cut -d' ' -f1)"
        ( while :; do echo "L2: tick $(cut -d' ' -f1 /proc/uptime) $(date +%s)"; sleep 0.1; done ) &
        sleep 1000 | nc -l -p 7790 > /tmp/conn &
        tries=0; until netstat -ltn | grep -q ':7790 ' || [ $tries -ge 100 ]; do sleep 0.1; tries=$((tries + 1)); done
        echo "L2: migrate ready"
        while read -r line; do
            case "$line" in
                check*)
                    name=${line#check }
                    echo "$name" >> /migrated.txt && sync
                    echo "L2: migrate check $name pattern $(md5sum < /tmp/pattern | cut -d' ' -f1) tcp [$(tr '\n' ' ' < /tmp/conn)]" ;;
                done) break ;;
            esac
        done
        poweroff -f ;;
    iperf)
        # bench/virtio_net.py: the first interface at 192.168.249.2, then
        # l2.iperf=N iperf3 servers, one test each, L1 the client.
        ip addr add 192.168.249.2/24 dev eth0 && ip link set eth0 up
        mkdir -p /tmp # iperf3's scratch file
        # Around each test, what the guest saw: its virtio-net interrupts
        # (transmit and receive queues) and the packets it sent and received.
        counts() {
            awk '/virtio[0-9]+-output/ { for (i = 2; i <= NF; i++) if ($i ~ /^[0-9]+$/) t += $i }
                 /virtio[0-9]+-input/ { for (i = 2; i <= NF; i++) if ($i ~ /^[0-9]+$/) r += $i }
                 END { printf "tx_irqs=%d rx_irqs=%d", t, r }' /proc/interrupts
            echo " tx_packets=$(cat /sys/class/net/eth0/statistics/tx_packets) rx_packets=$(cat /sys/class/net/eth0/statistics/rx_packets)"
        }
        for t in $(seq 1 $(arg l2.iperf)); do
            /usr/bin/iperf3 -s -1 > /dev/null 2>&1 &
            sleep 0.5
            echo "L2: iperf counts $t before $(counts)"
            echo "L2: iperf ready $t"
            wait
            echo "L2: iperf counts $t after $(counts)"
        done
        poweroff -f ;;
    fs)
        # The host's side is lab/tests/fs.sh. A marker in the share tells
        # the second boot from the first. The share is cache=none: each
        # read is a request to virtiofsd (~50 ms in the lab), so files are
        # read in 1 MiB requests, not md5sum's or cmp's small ones, and
        # entries counted by a glob (readdir only), not ls (a lookup each).
        share_md5() { dd if="$1" bs=1M 2>/dev/null | md5sum | cut -d' ' -f1; }
        mkdir -p /mnt /tmp
        mount -t virtiofs kataShared /mnt || { echo "L2: fs cannot mount kataShared"; poweroff -f; }
        if [ -e /mnt/booted-once ]; then
            echo "L2: fs after reboot renamed.bin md5=$(share_md5 /mnt/renamed.bin)"
            # A second share, hot-added while this one is mounted.
            echo "L2: fs waiting for a second share"
            tries=0; until mount -t virtiofs second /tmp 2>/dev/null || [ $tries -ge 300 ]; do sleep 0.2; tries=$((tries + 1)); done
            echo "L2: fs second share says [$(cat /tmp/note.txt 2>/dev/null)]"
            umount /tmp && echo "L2: fs second share unmounted"
            shares() { cat /sys/bus/pci/devices/*/device | grep -c 0x105a; }
            tries=0; while [ "$(shares)" -gt 1 ] && [ $tries -lt 300 ]; do sleep 0.2; tries=$((tries + 1)); done
            echo "L2: fs second share gone ($(shares) virtio-fs left)"
            echo "L2: fs all done"
            sleep 600
        fi
        for d in /sys/bus/pci/devices/*; do [ "$(cat $d/device)" = 0x105a ] && at=${d##*/}; done
        echo "L2: fs mounted $(grep kataShared /proc/mounts | cut -d' ' -f1-3) at $at"
        echo "L2: fs in.bin md5=$(share_md5 /mnt/in.bin)"
        dd if=/dev/urandom of=/tmp/out.bin bs=1M count=16 2>/dev/null
        cp /tmp/out.bin /mnt/out.bin && sync
        echo "L2: fs wrote out.bin md5=$(md5sum < /tmp/out.bin | cut -d' ' -f1)"
        mv /mnt/out.bin /mnt/renamed.bin && rm /mnt/in.bin
        mkdir -p /mnt/small
        i=0; while [ $i -lt 1000 ]; do i=$((i + 1)); echo $i > /mnt/small/$i; done
        dd if=/dev/zero of=/mnt/synced bs=4k count=16 conv=fsync 2>/dev/null && echo "L2: fs fsync ok"
        set -- /mnt/small/*; echo "L2: fs small files done: $#"
        # RAM the host hot-adds (fs.sh) comes online under the mounted share.
        tries=0; until [ "$(awk '/MemTotal/ {print $2}' /proc/meminfo)" -gt 600000 ] || [ $tries -ge 300 ]; do
            for m in /sys/devices/system/memory/memory*/state; do
                [ "$(cat $m 2>/dev/null)" = offline ] && { echo online > $m; } 2>/dev/null
            done
            sleep 0.2; tries=$((tries + 1))
        done
        dd if=/dev/urandom of=/tmp/big.bin bs=1M count=64 2>/dev/null
        cp /tmp/big.bin /mnt/big.bin && sync
        echo "L2: fs after hot-added RAM $(awk '/MemTotal/ {print $2}' /proc/meminfo) kB, big.bin $(dd if=/mnt/big.bin bs=1M 2>/dev/null | cmp /tmp/big.bin - && echo same)"
        rm /mnt/big.bin /tmp/big.bin
        touch /mnt/booted-once; sync
        echo "L2: fs rebooting"; reboot -f ;;
    fsbench)
        # bench/vhost_user.py: the share's sequential write and read and a
        # small-file loop, timed by the guest's clock.
        mkdir -p /mnt /tmp && mount -t virtiofs kataShared /mnt || { echo "L2: cannot mount kataShared"; poweroff -f; }
        t0=$(cut -d' ' -f1 /proc/uptime)
        dd if=/dev/zero of=/mnt/big bs=1M count=64 conv=fsync 2>/dev/null
        t1=$(cut -d' ' -f1 /proc/uptime)
        echo 3 > /proc/sys/vm/drop_caches
        dd if=/mnt/big of=/dev/null bs=1M 2>/dev/null
        t2=$(cut -d' ' -f1 /proc/uptime)
        mkdir /mnt/small
        i=0; while [ $i -lt 300 ]; do i=$((i + 1)); : > /mnt/small/$i; stat /mnt/small/$i > /dev/null; rm /mnt/small/$i; done
        t3=$(cut -d' ' -f1 /proc/uptime)
        echo "L2: bench $(awk -v a=$t0 -v b=$t1 -v c=$t2 -v d=$t3 'BEGIN { printf "fs_write_mbps=%.1f fs_read_mbps=%.1f fs_meta_ops=%.1f", 64/(b-a), 64/(c-b), 900/(d-c) }')"
        poweroff -f ;;
    shell)
        # A login-less shell on the console l2.console names (hvc0,
        # ttyS0), as an operator reaches one: lab/tests/consoles.sh types.
        dev=/dev/$(arg l2.console)
        tries=0; until [ -c $dev ] || [ $tries -ge 50 ]; do sleep 0.1; tries=$((tries + 1)); done
        echo "L2: shell on $dev"
        setsid sh -c "exec sh -i < $dev > $dev 2>&1"
        poweroff -f ;;
    vsockbench)
        # bench/vsock.py drives three listeners: a sink (host to guest), a
        # source of 64 MiB (guest to host) and an echo (round trips).
        vsocktest listen 5100 < /dev/null > /dev/null &
        head -c 67108864 /dev/zero | vsocktest listen 5101 > /dev/null &
        vsocktest echo 5102 1 > /dev/null &
        sleep 0.5; echo "L2: vsockbench ready"
        wait; poweroff -f ;;
    vsock)
        # The host's side is lab/tests/vsock.py. Which boot this is, the
        # host says over vsock itself.
        phase=$(vsocktest connect 2 4999 < /dev/null)
        echo "L2: vsock phase [$phase]"
        if [ "$phase" = again ]; then
            echo "L2: vsock after reboot [$(echo hello | vsocktest connect 2 5002)]"
            poweroff -f
        fi
        mkdir -p /tmp
        # Host to guest, 64 MiB.
        vsocktest listen 1024 < /dev/null > /tmp/in &
        sleep 0.5; echo "L2: vsock listening 1024"
        wait
        echo "L2: vsock received $(wc -c < /tmp/in) bytes md5=$(md5sum < /tmp/in | cut -d' ' -f1)"
        rm /tmp/in
        # Guest to host, 64 MiB.
        dd if=/dev/urandom of=/tmp/out bs=1M count=64 2>/dev/null
        echo "L2: vsock sending md5=$(md5sum < /tmp/out | cut -d' ' -f1)"
        vsocktest connect 2 5000 < /tmp/out > /dev/null
        echo "L2: vsock sent status=$?"
        # A host port nobody serves, then a guest port nobody listens on.
        echo "L2: vsock refused [$(vsocktest connect 2 5999 < /dev/null 2>&1)]"
        # 50 streams at once.
        vsocktest echo 1025 50 > /tmp/echo.out &
        sleep 0.5; echo "L2: vsock echoing"
        wait
        echo "L2: vsock $(tail -1 /tmp/echo.out)"
        # The host closes mid-stream; then the guest's sender dies mid-stream.
        vsocktest listen 1026 < /dev/null > /dev/null 2>&1 &
        sleep 0.5; echo "L2: vsock listening 1026"
        wait
        echo "L2: vsock host close seen status=$?"
        cat /tmp/out /tmp/out | vsocktest connect 2 5001 > /dev/null 2>&1 &
        sleep 2; kill -9 $!
        # A host reader that stops: the guest's sender waits on credit.
        cat /tmp/out | vsocktest connect 2 5003 > /dev/null
        echo "L2: vsock flood done status=$?"
        rm /tmp/out
        echo "L2: vsock rebooting"; reboot -f ;;
    sigterm)
        echo "first flushed data" > /l2-flushed.txt
        sync
        echo "L2: flushed"
        i=0; while true; do echo "$i" >> /l2-more.txt; i=$((i + 1)); done ;;
    *) echo "L2: powering off"; poweroff -f ;;
esac
