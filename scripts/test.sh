#!/usr/bin/env bash
# Installs what is needed (including the nested lab's QEMU and kernels,
# cached in .lab-cache), runs the fuzz targets briefly and every test. KVM tests report themselves as
# skipped where /dev/kvm is not usable; the lab tests boot Linux in L1.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
lab/setup.sh >/dev/null
lab/debian.sh >/dev/null
swift build -c release --static-swift-stdlib
# The lab's scenarios (two L1 boots side by side, 12-28 minutes on two
# cores: this lab's speed varies that much between days) start now, beside the fuzzing, the tests' own build
# and the other tests; the lab tests then read what they left
# (CLOUD_HYPERVISOR_LAB_RUN) instead of booting L1 themselves.
lab_run="$(mktemp -d /tmp/lab-run.XXXXXX)"
(set +e; lab/all.sh --out "$lab_run" --timeout 3600 "$PWD/.build/release/cloud-hypervisor" "$PWD/.lab-cache" \
     > "$lab_run/run.out" 2> "$lab_run/run.err"; echo $? > "$lab_run/run.status") &
# An early failure (a fuzz crash) stops the lab too.
trap 'pkill -f "lab.out=$lab_run/" 2>/dev/null || true' EXIT
export CLOUD_HYPERVISOR_LAB_RUN="$lab_run"
# The guest-facing parsers under libFuzzer (ASan, UBSan), briefly.
fuzz/run.sh 10
swift test
