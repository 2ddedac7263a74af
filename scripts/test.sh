#!/usr/bin/env bash
# Installs what is needed and runs every test. KVM tests report themselves
# as skipped where /dev/kvm is not usable.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
swift build -c release --static-swift-stdlib
swift test
