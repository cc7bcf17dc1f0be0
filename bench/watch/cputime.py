#!/usr/bin/env python3
"""cputime.py CMD [ARG...]: runs CMD, its stdout and stderr passed through, and prints on
fd 3 "WALL_US USER_US SYS_US EXIT": wall time, and the user and system CPU time of CMD and
every descendant it waited for (getrusage RUSAGE_CHILDREN: python's own start-up is not
in it), in microseconds. /usr/bin/time reports CPU in centiseconds only."""
import os
import resource
import subprocess
import sys
import time

before = resource.getrusage(resource.RUSAGE_CHILDREN)
t0 = time.monotonic_ns()
code = subprocess.call(sys.argv[1:])
t1 = time.monotonic_ns()
after = resource.getrusage(resource.RUSAGE_CHILDREN)
user = round((after.ru_utime - before.ru_utime) * 1e6)
system = round((after.ru_stime - before.ru_stime) * 1e6)
os.write(3, ("%d %d %d %d\n" % ((t1 - t0) // 1000, user, system, code)).encode())
sys.exit(code)
