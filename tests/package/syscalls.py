#!/usr/bin/env python3
"""Checks an strace log against the unit's SystemCallFilter.

Usage: syscalls.py UNIT_FILE STRACE_LOG

No systemd runs in CI, so the unit's seccomp filter is never applied
there; this reads the filter from the unit as systemd does (the first
assignment, an allow list, sets the default; each later one adds to the
set, or with `~` takes from it, in order), expands systemd's groups with
`systemd-analyze syscall-filter`, and lists every system call the traced
daemon made that the filter would refuse. Exit 1 if there is any, or if
the log is not a trace of a whole run (too few kinds of calls).
"""

import re
import subprocess
import sys

_groups = {}

# The fewest kinds of system calls a whole run of the daemon makes.
MIN_KINDS = 30


def expand(name):
    if not name.startswith("@"):
        return {name}
    if name not in _groups:
        out = subprocess.run(
            ["systemd-analyze", "syscall-filter", name], capture_output=True, text=True, check=True
        ).stdout
        names = set()
        for line in out.splitlines()[1:]:
            token = line.strip()
            if token and not token.startswith("#"):
                names |= expand(token)
        _groups[name] = names
    return _groups[name]


def allowed_by(unit):
    allowed = None
    for line in open(unit):
        m = re.match(r"\s*SystemCallFilter=(~?)(.*)", line)
        if not m:
            continue
        names = set().union(*(expand(n) for n in m.group(2).split()))
        if allowed is None:
            # This checker knows allow-list units only (ours is one).
            assert not m.group(1), "the first SystemCallFilter= must be an allow list"
            allowed = names
        elif m.group(1):
            allowed -= names
        else:
            allowed |= names
    return allowed or set()


def main():
    unit, log = sys.argv[1], sys.argv[2]
    used = set()
    for line in open(log):
        m = re.match(r"\d+\s+([a-z0-9_]+)\(", line)
        if m:
            used.add(m.group(1))
    # A daemon that started, wrote, drew and stopped makes dozens of kinds
    # of calls: fewer means the trace is not of it (an empty log, strace
    # failing to attach), and proves nothing.
    if len(used) < MIN_KINDS:
        print(f"only {len(used)} system calls in {log}: not a trace of the daemon's run")
        sys.exit(1)
    refused = sorted(used - allowed_by(unit))
    print(f"{len(used)} system calls used; refused by the unit's filter: {refused or 'none'}")
    sys.exit(1 if refused else 0)


if __name__ == "__main__":
    main()
