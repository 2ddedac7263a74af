#!/usr/bin/env bash
# Installs the Debian packages the build, the tests and the tiny guests need.
# Idempotent: does nothing when they are already there.
set -euo pipefail

packages=(libseccomp-dev libcap-ng-dev liburing-dev gcc gcc-multilib binutils pkg-config time curl acpica-tools python3-yaml qemu-system-common)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    echo "installing: ${missing[*]}"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi
command -v swift >/dev/null || {
    echo "error: no Swift toolchain on PATH: install Swift 6 (swift.org) and add its usr/bin to PATH" >&2
    exit 1
}
