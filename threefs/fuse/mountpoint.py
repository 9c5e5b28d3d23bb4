"""Checks of a mountpoint before mounting on it (no pyfuse3 needed: `threefs up` runs them too).

A mount left by a threefs daemon that died (every access fails with ENOTCONN) is detached, since nothing
can be served from it any more; a live FUSE mount, a file, or a path that cannot be created is refused with
a message that says what to do, instead of a traceback or a second mount stacked on the first. Other
mounts (a bind mount, as container volumes are) may be mounted over.
"""
from __future__ import annotations

import errno
import os
import re
import shutil
import stat
import subprocess

FSTYPE = "fuse.threefs"


def _unescape(field: str) -> str:
    """A path as /proc/self/mountinfo writes it (space, tab, newline and backslash as octal escapes)."""
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def mounted_fstype(path: str) -> str | None:
    """The file system type of the topmost mount whose mount point is `path` (absolute), or None."""
    found = None
    try:
        with open("/proc/self/mountinfo") as f:
            for line in f:
                fields = line.split()
                sep = fields.index("-")
                if _unescape(fields[4]) == path:
                    found = fields[sep + 1]
    except (OSError, ValueError, IndexError):
        return None
    return found


def unmount_command(path: str, lazy: bool = False) -> list[str]:
    """fusermount3 -u (lazy: -z), or umount (-l) where FUSE's tool is missing."""
    tool = shutil.which("fusermount3") or shutil.which("fusermount")
    return [tool, "-u"] + (["-z"] if lazy else []) + [path] if tool else ["umount"] + (["-l"] if lazy else []) + [path]


def detach(path: str) -> None:
    """Lazily unmount `path`, whatever the outcome (a dead mount: nothing to flush)."""
    subprocess.run(unmount_command(path, lazy=True), check=False, capture_output=True)


def prepare(mountpoint: str) -> tuple[str, bool]:
    """The absolute mountpoint, ready to mount on (created if missing), and whether a dead threefs mount
    was detached from it; ValueError says why the path cannot be used."""
    path = os.path.abspath(mountpoint)
    detached = False
    fstype = mounted_fstype(path)
    if fstype is not None and fstype.startswith("fuse"):   # a bind mount (a container volume) is fine
        try:
            os.statvfs(path)           # always reaches the daemon (a stat may answer from cached attributes)
        except OSError as e:
            if e.errno != errno.ENOTCONN or fstype != FSTYPE:
                raise ValueError(f"cannot use {path} as a mountpoint: {e.strerror} (a {fstype} mount; "
                                 f"unmount it first)") from None
            detach(path)               # its daemon is gone: the kernel can only answer ENOTCONN there
            detached = True
        else:
            hint = f"threefs umount {path}" if fstype == FSTYPE else f"fusermount3 -u {path}"
            raise ValueError(f"{path} is already a mount point ({fstype}); unmount it first ({hint}) "
                             f"or choose another directory")
    try:
        st = os.stat(path)
    except FileNotFoundError:
        try:
            os.makedirs(path)
        except OSError as e:
            raise ValueError(f"cannot create the mountpoint {path}: {e.strerror}") from None
        return path, detached
    except OSError as e:
        raise ValueError(f"cannot use {path} as a mountpoint: {e.strerror}") from None
    if not stat.S_ISDIR(st.st_mode):
        raise ValueError(f"the mountpoint {path} is not a directory")
    return path, detached
