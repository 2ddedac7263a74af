#!/usr/bin/env bash
# Installs what is needed (including the nested lab's QEMU and kernels,
# cached in .lab-cache), runs the fuzz targets briefly and every test. KVM tests report themselves as
# skipped where /dev/kvm is not usable; the lab tests boot Linux in L1.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
lab/setup.sh >/dev/null
swift build -c release --static-swift-stdlib
# The guest-facing parsers under libFuzzer (ASan, UBSan), briefly.
fuzz/run.sh 10
swift test
