#!/bin/sh
# Runs inside L1 (lab/run.sh): live migration of a running Linux guest
# (virtio disk, virtio-net on a tap, serial console; l2-init's "migrate")
# from VMM a to b over a UNIX socket, b to c over TCP, then c to d with d
# killed half-way: c keeps the guest; then c paused, snapshotted and
# killed, and e restores it. After each, the guest reports its RAM
# pattern, the TCP connection's bytes and writes a line to its disk; then
# it powers off on e. Leaves migration.log (every VMM's output, each line
# stamped with L1's clock), migration.check (the API's answers, the gaps
# between ticks, the disk's lines) and migration.status (e's exit).
# Usage: migration.sh VMM CACHE
vmm=$1 cache=$2
. "$(dirname "$0")/common.sh"
here=$(cd "$(dirname "$0")" && pwd)
work=/run/migration-lab
rm -rf $work migration-*.log; mkdir -p $work
cp --sparse=always "$cache/l2-disk.raw" $work/disk.raw
ip link set lo up   # the TCP migration goes to 127.0.0.1
: > migration.check
# The answer's code; a refusal's words go to migration.check too.
api() {
    body=$(mktemp -p $work)
    code=$(curl -s -o $body -w "%{http_code}" --unix-socket "$1" -X PUT ${3:+-d "$3"} "http://localhost/api/v1/$2")
    [ "$code" = 204 ] || echo "answer $2: $(cat $body)" >> migration.check
    echo $code
}
for v in a b c d e; do mkfifo $work/in.$v; sleep 1000 > $work/in.$v & done
start() { # name, then the VMM's arguments
    name=$1; shift
    ( "$vmm" --api-socket $work/$name.sock --seccomp true -v "$@" < $work/in.$name 2>&1; echo "VMM exit $?" ) \
        | python3 "$here/stamp.py" > migration-$name.log &
    tries=0; until [ -S $work/$name.sock ] || [ $tries -ge 100 ]; do sleep 0.1; tries=$((tries + 1)); done
}
pid_of() { pgrep -f -- "--api-socket $work/$1.sock" | head -1; }
rss() { awk '/VmRSS/ {print $2}' /proc/$1/status 2>/dev/null; }
# Host-visible gap: L1's time between the last tick on one VMM and the first on the next.
gap() { # from, to
    last=$(grep 'L2: tick' migration-$1.log | tail -1 | cut -d' ' -f1)
    first=$(grep 'L2: tick' migration-$2.log | head -1 | cut -d' ' -f1)
    echo "$first $last" | awk '{printf "%.3f", $1 - $2}'
}
receive() { # name, url: answers go to migration.check
    ( echo "receive $1 $(api $work/$1.sock vm.receive-migration "{\"receiver_url\":\"$2\"}")" >> migration.check ) &
    sleep 1
}

# A line to a VMM's serial input; not waiting for one that is gone.
say() { timeout 5 sh -c "echo '$2' > $work/in.$1"; }
# Ends the scenario (early when a step failed): the guest's lines on its
# disk, after its journal is replayed, every VMM's output, c's exit.
finish() {
    for v in a b c; do echo "exited $v [$(grep -o 'VMM exit [0-9]*' migration-$v.log)]" >> migration.check; done
    say e done
    tries=0; until grep -q "VMM exit" migration-e.log 2>/dev/null || [ $tries -ge 300 ]; do sleep 0.2; tries=$((tries + 1)); done
    exec 3>&-
    dd if=$work/disk.raw of=$work/part.img bs=1M skip=1 status=none
    e2fsck -E journal_only -y $work/part.img > /dev/null 2>&1
    echo "disk $(debugfs -R 'cat /migrated.txt' $work/part.img 2>/dev/null | tr '\n' ' ')" >> migration.check
    cat migration-a.log migration-b.log migration-c.log migration-d.log migration-e.log > migration.log 2>/dev/null
    grep -o 'VMM exit [0-9]*' migration-e.log | cut -d' ' -f3 > migration.status
    [ -s migration.status ] || echo 1 > migration.status
    pkill -f "$work/" 2>/dev/null
    pkill -f "sleep 1000" 2>/dev/null
    ip tuntap del dev migtap0 mode tap multi_queue 2>/dev/null
    rm -rf $work
    exit 0
}
# Goes on only if the last API call answered `code`.
expect() { # text in migration.check
    grep -q "$1" migration.check || { echo "stopped: no '$1'" >> migration.check; finish; }
}

# A persistent multi-queue tap: every VMM opens it by name (c while b
# still holds queues of it), and it outlives the one killed for the restore.
ip tuntap add dev migtap0 mode tap multi_queue vnet_hdr
ip addr add 192.168.249.1/24 dev migtap0 && ip link set migtap0 up
start a --kernel "$cache/l2-vmlinux" --initramfs "$cache/l2-initramfs.cpio" --disk path=$work/disk.raw \
    --net tap=migtap0,mac=12:34:56:78:90:ab,num_queues=4 \
    --cmdline "console=ttyS0 root=/dev/vda1 rw panic=-1 quiet l2.action=migrate" \
    --cpus 2 --memory size=512M --serial tty --console off
wait_for migration-a.log "L2: migrate ready" 1
mkfifo $work/tcp
busybox nc 192.168.249.2 7790 < $work/tcp > /dev/null &
exec 3> $work/tcp
echo before >&3

# a → b over a UNIX socket: the tap's queues go with it.
start b
receive b unix:$work/ab.sock
echo "send a $(api $work/a.sock vm.send-migration "{\"destination_url\":\"unix:$work/ab.sock\"}")" >> migration.check
wait_for migration.check "receive b" 1
expect "send a 204"
sleep 1; echo after-unix >&3; sleep 1
say b "check unix"
wait_for migration-b.log "L2: migrate check unix" 1
echo "gap unix $(gap a b)" >> migration.check

# b → c over TCP: c opens the (multi-queue) tap by name.
start c
receive c tcp:0.0.0.0:6601
echo "send b $(api $work/b.sock vm.send-migration '{"destination_url":"tcp:127.0.0.1:6601","downtime_ms":300,"timeout_s":600,"timeout_strategy":"Cancel"}')" >> migration.check
wait_for migration.check "receive c" 1
expect "send b 204"
sleep 1; echo after-tcp >&3; sleep 1
say c "check tcp"
wait_for migration-c.log "L2: migrate check tcp" 1
echo "gap tcp $(gap b c)" >> migration.check

# c → d, d killed once RAM is arriving: c answers 500 and keeps the guest.
start d
receive d unix:$work/cd.sock
d=$(pid_of d)
( echo "send c $(api $work/c.sock vm.send-migration "{\"destination_url\":\"unix:$work/cd.sock\"}")" >> migration.check ) &
tries=0
until [ "$(rss $d)" -gt 65536 ] 2>/dev/null || [ $tries -ge 600 ]; do
    sleep 0.05; tries=$((tries + 1))
done
echo "killed d at $(rss $d) KiB" >> migration.check
kill -9 $d
wait_for migration.check "send c" 1
sleep 1; echo after-cancel >&3; sleep 1
say c "check cancel"
wait_for migration-c.log "L2: migrate check cancel" 1

# c paused, snapshotted, killed; e restores it (taking tap and disk by name) and resumes.
mkdir $work/snap
echo "pause c $(api $work/c.sock vm.pause)" >> migration.check
echo "snapshot c $(api $work/c.sock vm.snapshot "{\"destination_url\":\"file://$work/snap\"}")" >> migration.check
kill -9 "$(pid_of c)"
expect "snapshot c 204"
start e --restore source_url=file://$work/snap
echo "resume e $(api $work/e.sock vm.resume)" >> migration.check
sleep 1; echo after-snapshot >&3; sleep 1
say e "check snapshot"
wait_for migration-e.log "L2: migrate check snapshot" 1

finish
