#!/bin/sh
# Every lab scenario in one L1 boot. Usage: all.sh VMM CACHE
here=$(dirname "$0")
sh "$here/linux-boot.sh" "$1" "$2"
sh "$here/virtio.sh" "$1" "$2"
sh "$here/net.sh" "$1" "$2"
sh "$here/api.sh" "$1" "$2"
sh "$here/vfio.sh" "$1" "$2"
