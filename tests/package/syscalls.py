#!/usr/bin/env python3
"""Checks an strace log against the unit's SystemCallFilter.

Usage: syscalls.py UNIT_FILE STRACE_LOG

No systemd runs in CI, so the unit's seccomp filter is never applied
there; this reads the filter from the unit as systemd does (the first
assignment, an allow list, sets the default; each later one adds to the
set, or with `~` takes from it, in order), expands systemd's groups with
`systemd-analyze syscall-filter`, and lists every system call the traced
daemon made that the filter would refuse. Exit 1 if there is any.
"""

import re
import subprocess
import sys

_groups = {}


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
    refused = sorted(used - allowed_by(unit))
    print(f"{len(used)} system calls used; refused by the unit's filter: {refused or 'none'}")
    sys.exit(1 if refused else 0)


if __name__ == "__main__":
    main()
