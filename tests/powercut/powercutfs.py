#!/usr/bin/python3
"""A file system that loses power: a FUSE layer over a real directory that
keeps everything not yet made durable in its own memory, as LazyFS does
for Jepsen, so that killing it is a power cut.

Usage: powercutfs.py BACKING MOUNTPOINT   (runs in the foreground; root)

The model, the strictest POSIX allows:
- File contents: a write, a truncate (and a page written back from an
  `mmap`) changes only this process's copy of the file; `fsync` or
  `fdatasync` of the file writes that copy to BACKING and fsyncs it there.
  Killing this process drops every copy: unsynced data is gone, synced data
  stays.
- Names: a create, mkdir, rename, unlink or rmdir happens in BACKING at
  once, but is logged (`.powercut/log`, fsynced, with whatever it replaced
  or removed kept in `.powercut/trash`) until the directory holding the
  new name is fsynced. At the next start every logged operation not made
  durable that way is undone, newest first: a file whose directory was
  never fsynced after it was created is gone, a rename not followed by an
  fsync of its directory is back to the old name and content.

Limits (say them when quoting a result): a durable write is all or
nothing here, never torn within a write; nothing is reordered among synced
data; `syncfs`, `sync` and `sync_file_range` are not seen by FUSE (the
daemon does not rely on them); metadata (modes, times) is not modelled.
"""

import errno
import json
import os
import stat
import sys

from fusepy import FUSE, FuseOSError, Operations

STATE = ".powercut"


class PowerCutFS(Operations):
    use_ns = True

    def __init__(self, backing):
        self.backing = os.path.realpath(backing)
        self.state = os.path.join(self.backing, STATE)
        self.trash = os.path.join(self.state, "trash")
        self.log_path = os.path.join(self.state, "log")
        os.makedirs(self.trash, exist_ok=True)
        self.rollback()
        self.log = open(self.log_path, "a")
        self.next_id = 0
        # Unsynced contents, by path: what a power cut loses.
        self.dirty = {}
        self.fh = 0

    # -- the log of names not yet durable ---------------------------------

    def rollback(self):
        """Undoes, newest first, every logged name operation whose
        directory was not fsynced after it; then starts a new log."""
        pending = []
        if os.path.exists(self.log_path):
            for line in open(self.log_path):
                try:
                    entry = json.loads(line)
                except ValueError:
                    break  # a torn last line: it was never acted on
                if "durable" in entry:
                    pending = [e for e in pending if e["dir"] != entry["durable"]]
                else:
                    pending.append(entry)
        undone = 0
        for e in reversed(pending):
            self.undo(e)
            undone += 1
            print(f"powercutfs: undone {e['op']} {e.get('path') or e['old'] + ' -> ' + e['new']}",
                  file=sys.stderr, flush=True)
        for name in os.listdir(self.trash):
            path = os.path.join(self.trash, name)
            if os.path.isdir(path) and not os.path.islink(path):
                remove_tree(path)
            else:
                os.unlink(path)
        with open(self.log_path, "w") as log:
            log.flush()
            os.fsync(log.fileno())
        fsync_dir(self.state)
        fsync_dir(self.backing)
        print(f"powercutfs: {undone} name operations undone", file=sys.stderr, flush=True)

    def undo(self, e):
        real = self.real
        op = e["op"]
        if op == "create":
            if os.path.lexists(real(e["path"])):
                os.unlink(real(e["path"]))
        elif op == "mkdir":
            if os.path.isdir(real(e["path"])):
                remove_tree(real(e["path"]))
        elif op in ("unlink", "rmdir"):
            os.rename(os.path.join(self.trash, e["trash"]), real(e["path"]))
        elif op == "rename":
            if os.path.lexists(real(e["new"])):
                os.rename(real(e["new"]), real(e["old"]))
            if e.get("trash"):
                os.rename(os.path.join(self.trash, e["trash"]), real(e["new"]))

    def record(self, entry):
        """Logs a name operation before it is done, durably."""
        self.next_id += 1
        entry["id"] = self.next_id
        self.log.write(json.dumps(entry) + "\n")
        self.log.flush()
        os.fsync(self.log.fileno())
        return entry

    # -- helpers ------------------------------------------------------------

    def real(self, path):
        return os.path.join(self.backing, path.lstrip("/"))

    def contents(self, path):
        """The unsynced copy of `path`, made from BACKING at first need."""
        if path not in self.dirty:
            try:
                with open(self.real(path), "rb") as f:
                    self.dirty[path] = bytearray(f.read())
            except FileNotFoundError:
                raise FuseOSError(errno.ENOENT)
        return self.dirty[path]

    def new_fh(self):
        self.fh += 1
        return self.fh

    # -- what the kernel asks -------------------------------------------------

    def getattr(self, path, fh=None):
        if path == "/" + STATE:
            raise FuseOSError(errno.ENOENT)
        try:
            st = os.lstat(self.real(path))
        except FileNotFoundError:
            raise FuseOSError(errno.ENOENT)
        attrs = {k: getattr(st, k) for k in ("st_mode", "st_nlink", "st_uid", "st_gid", "st_size")}
        # Nanoseconds (`use_ns`).
        for k in ("st_atime", "st_mtime", "st_ctime"):
            attrs[k] = getattr(st, k + "_ns")
        if path in self.dirty:
            attrs["st_size"] = len(self.dirty[path])
        return attrs

    def access(self, path, amode):
        if not os.path.lexists(self.real(path)):
            raise FuseOSError(errno.ENOENT)
        return 0

    def readdir(self, path, fh):
        names = [".", ".."] + os.listdir(self.real(path))
        if path == "/":
            names = [n for n in names if n != STATE]
        return names

    def statfs(self, path):
        sv = os.statvfs(self.backing)
        return {k: getattr(sv, k) for k in (
            "f_bavail", "f_bfree", "f_blocks", "f_bsize", "f_favail", "f_ffree",
            "f_files", "f_flag", "f_frsize", "f_namemax")}

    def chmod(self, path, mode):
        os.chmod(self.real(path), mode)

    def chown(self, path, uid, gid):
        os.chown(self.real(path), uid, gid)

    def utimens(self, path, times=None):
        os.utime(self.real(path), ns=times)

    def create(self, path, mode, fi=None):
        self.record({"op": "create", "path": path, "dir": os.path.dirname(path)})
        fd = os.open(self.real(path), os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
        os.close(fd)
        self.dirty[path] = bytearray()
        return self.new_fh()

    def mkdir(self, path, mode):
        self.record({"op": "mkdir", "path": path, "dir": os.path.dirname(path)})
        os.mkdir(self.real(path), mode)

    def unlink(self, path):
        entry = self.record({"op": "unlink", "path": path, "dir": os.path.dirname(path),
                             "trash": f"{self.next_id + 1}"})
        os.rename(self.real(path), os.path.join(self.trash, entry["trash"]))
        self.dirty.pop(path, None)

    def rmdir(self, path):
        if os.listdir(self.real(path)):
            raise FuseOSError(errno.ENOTEMPTY)
        entry = self.record({"op": "rmdir", "path": path, "dir": os.path.dirname(path),
                             "trash": f"{self.next_id + 1}"})
        os.rename(self.real(path), os.path.join(self.trash, entry["trash"]))

    def rename(self, old, new):
        replaced = os.path.lexists(self.real(new))
        entry = self.record({"op": "rename", "old": old, "new": new,
                             "dir": os.path.dirname(new),
                             "trash": f"{self.next_id + 1}" if replaced else None})
        if replaced:
            if os.path.isdir(self.real(new)) and os.listdir(self.real(new)):
                raise FuseOSError(errno.ENOTEMPTY)
            os.rename(self.real(new), os.path.join(self.trash, entry["trash"]))
        os.rename(self.real(old), self.real(new))
        self.dirty.pop(new, None)
        for path in [p for p in self.dirty if p == old or p.startswith(old + "/")]:
            self.dirty[new + path[len(old):]] = self.dirty.pop(path)

    def open(self, path, flags):
        if not os.path.lexists(self.real(path)):
            raise FuseOSError(errno.ENOENT)
        if flags & os.O_TRUNC:
            self.contents(path)[:] = b""
        return self.new_fh()

    def read(self, path, size, offset, fh):
        if path in self.dirty:
            return bytes(self.dirty[path][offset:offset + size])
        with open(self.real(path), "rb") as f:
            f.seek(offset)
            return f.read(size)

    def write(self, path, data, offset, fh):
        buf = self.contents(path)
        if offset > len(buf):
            buf.extend(b"\0" * (offset - len(buf)))
        buf[offset:offset + len(data)] = data
        return len(data)

    def truncate(self, path, length, fh=None):
        buf = self.contents(path)
        if length < len(buf):
            del buf[length:]
        else:
            buf.extend(b"\0" * (length - len(buf)))

    def flush(self, path, fh):
        return 0

    def release(self, path, fh):
        return 0

    def fsync(self, path, datasync, fh):
        """Makes the file's content durable: its copy written to BACKING."""
        buf = self.dirty.pop(path, None)
        if buf is None:
            return 0
        fd = os.open(self.real(path), os.O_WRONLY)
        try:
            os.ftruncate(fd, len(buf))
            os.pwrite(fd, bytes(buf), 0)
            os.fsync(fd)
        finally:
            os.close(fd)
        return 0

    def fsyncdir(self, path, datasync, fh):
        """Makes the names in `path` durable: its logged operations stay."""
        self.log.write(json.dumps({"durable": path}) + "\n")
        self.log.flush()
        os.fsync(self.log.fileno())
        return 0

    def opendir(self, path):
        return self.new_fh()

    def releasedir(self, path, fh):
        return 0


def fsync_dir(path):
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def remove_tree(path):
    for root, dirs, files in os.walk(path, topdown=False):
        for f in files:
            os.unlink(os.path.join(root, f))
        for d in dirs:
            os.rmdir(os.path.join(root, d))
    os.rmdir(path)


def main():
    backing, mountpoint = sys.argv[1], sys.argv[2]
    fs = PowerCutFS(backing)
    FUSE(fs, mountpoint, foreground=True, nothreads=True,
         attr_timeout=0, entry_timeout=0, negative_timeout=0)


if __name__ == "__main__":
    main()
