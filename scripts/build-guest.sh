#!/usr/bin/env bash
# Builds one tiny PVH guest from Tests/HypervisorTests/Guests/NAME.S into OUT.
# Usage: scripts/build-guest.sh NAME OUT
set -euo pipefail
[ $# -eq 2 ] || { echo "usage: $0 NAME OUT" >&2; exit 2; }
src="$(cd "$(dirname "$0")/../Tests/HypervisorTests/Guests" && pwd)"
out="$(cd "$(dirname "$2")" && pwd)/$(basename "$2")"
cd "$src"
exec gcc -m32 -nostdlib -static -no-pie -Wl,-T,guest.ld -Wl,--build-id=none \
    -Wl,--no-warn-rwx-segments -o "$out" common.S "$1.S"
