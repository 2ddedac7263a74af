#!/usr/bin/env python3
"""Copies standard input to standard output line by line, each line led by
L1's CLOCK_REALTIME when it arrived (seconds, microseconds): the guest's own
clock in its lines can then be compared with L1's."""
import sys
import time

for line in sys.stdin.buffer:
    sys.stdout.buffer.write(b"%.6f " % time.time() + line)
    sys.stdout.buffer.flush()
