#!/usr/bin/env bash
# Builds one tiny PVH guest from Tests/HypervisorTests/Guests/NAME.S (or
# NAME.c, freestanding C) into OUT.
# Usage: scripts/build-guest.sh NAME OUT
set -euo pipefail
[ $# -eq 2 ] || { echo "usage: $0 NAME OUT" >&2; exit 2; }
src="$(cd "$(dirname "$0")/../Tests/HypervisorTests/Guests" && pwd)"
out="$(cd "$(dirname "$2")" && pwd)/$(basename "$2")"
cd "$src"
main="$1.S"
[ -e "$main" ] || main="$1.c"
exec gcc -m32 -nostdlib -static -no-pie -ffreestanding -fno-pic -fno-stack-protector -fno-asynchronous-unwind-tables \
    -mgeneral-regs-only -O2 -Wl,-T,guest.ld -Wl,--build-id=none -Wl,--no-warn-rwx-segments -o "$out" common.S "$main"
