"""Creates the mount answers itself under a directory lease, sent to meta when the file is closed.

Under a lease (threefs.fuse.dir_leases) the mount knows that a name it did not add is missing and that
no other client adds it before the lease is recalled, so a create there cannot fail for its name. The
mount answers the kernel's CREATE at once, with an inode id from a block meta gave it (AllocateInodes)
and the attributes meta will store (owner, group, mode and time, which the create carries), and sends
the create at the file's close together with a small file's whole content and the close's durable
commit: one meta call per small file instead of two (CephFS makes asynchronous creates the same way).
Before anything else of this mount asks meta, before the file's data goes to storage, when the lease
is recalled, and a second before it would end, the pending creates are sent, so meta never hears of a
file it does not know and no other client can take a name this mount has answered for.
"""
from __future__ import annotations

from dataclasses import dataclass

from threefs.proto import meta_pb2 as mp

SETTLE_BEFORE_END = 1.0      # seconds before its lease ends that a pending create is sent anyway
MIN_LEASE_LEFT = 3.0         # a create is deferred only while its lease has this much left


@dataclass
class Deferred:
    """What meta needs to make the file the kernel was told about."""

    parent: int
    name: str
    flags: int
    perm: int                 # as the caller asked (mode & 0o7777); meta applies the same rules the mount did
    time_ns: int
    base: mp.ReqBase          # the caller, as at the create


class InodePool:
    """Inode ids meta gave this mount for its deferred creates (one block at a time)."""

    def __init__(self) -> None:
        self.next = 0
        self.end = 0
        self.inline_max = 0   # the largest content meta keeps inline (from the same answer)

    def take(self) -> int | None:
        if self.next >= self.end:
            return None
        out = self.next
        self.next += 1
        return out

    def refill(self, rsp: mp.AllocateInodesRsp) -> None:
        self.next, self.end = rsp.first, rsp.first + rsp.count
        self.inline_max = rsp.inline_max
