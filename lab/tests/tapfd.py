#!/usr/bin/env python3
"""Opens a tap the way Kata Containers or libvirt do before starting the VMM
(IFF_TAP | IFF_NO_PI | IFF_VNET_HDR, address and link set up here), then
execs COMMAND with {fd} in its arguments replaced by the tap's descriptor,
left open across exec. The tap goes away when the VMM closes it.

Usage: tapfd.py NAME ADDRESS/PREFIX -- COMMAND...
"""
import fcntl
import os
import struct
import subprocess
import sys

TUNSETIFF = 0x400454CA
IFF_TAP, IFF_NO_PI, IFF_VNET_HDR = 0x0002, 0x1000, 0x4000

name, cidr, sep, *command = sys.argv[1:]
assert sep == "--" and command, __doc__
fd = os.open("/dev/net/tun", os.O_RDWR)
fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", name.encode(), IFF_TAP | IFF_NO_PI | IFF_VNET_HDR))
subprocess.run(["ip", "addr", "add", cidr, "dev", name], check=True)
subprocess.run(["ip", "link", "set", name, "up"], check=True)
os.set_inheritable(fd, True)
command = [arg.replace("{fd}", str(fd)) for arg in command]
os.execvp(command[0], command)
