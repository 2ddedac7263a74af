#!/usr/bin/env bash
# Builds the libFuzzer targets (the Swift toolchain's clang, ASan + UBSan)
# and runs each for SECONDS (default 20) from its corpus in fuzz/corpus/.
# New inputs go to a scratch copy; a crash fails the run and leaves its
# input in .build-fuzz/. Usage: fuzz/run.sh [SECONDS] [TARGET...]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-20}; shift || true
targets=("$@"); [ ${#targets[@]} -gt 0 ] || targets=(virtq pci_config serial)
out=.build-fuzz; mkdir -p "$out"
cc=$(command -v clang)
for t in "${targets[@]}"; do
    if [ "$t" = pci_config ] && ! [ -r /dev/kvm -a -w /dev/kvm ]; then
        echo "fuzz: $t: skipped (needs read-write /dev/kvm)"; continue
    fi
    if ! "$cc" -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -D_GNU_SOURCE \
        -Iinclude -ISources/CVMMCore -o "$out/$t" "fuzz/$t.c" Sources/CVMMCore/*.c -luring -lpthread \
        > "$out/$t.build.log" 2>&1; then
        grep -v "Cannot export local symbol" "$out/$t.build.log" >&2
        echo "fuzz: cannot build $t" >&2; exit 1
    fi
    scratch=$(mktemp -d); cp -r "fuzz/corpus/$t/." "$scratch/"
    log="$out/$t.log"
    if ! "$out/$t" -max_total_time="$seconds" -timeout=10 -artifact_prefix="$out/$t-" "$scratch" > "$log" 2>&1; then
        tail -40 "$log" >&2
        echo "fuzz: $t FAILED (input in $out/$t-*)" >&2
        rm -rf "$scratch"; exit 1
    fi
    runs=$(grep -o 'Done [0-9]* runs' "$log" | tail -1)
    echo "fuzz: $t: ${runs:-?} in ${seconds}s, corpus $(ls "$scratch" | wc -l) inputs, no crash"
    rm -rf "$scratch"
done
