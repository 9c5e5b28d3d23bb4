"""WebHDFS JSON shapes: FileStatus, ContentSummary and the MD5-of-MD5-of-CRC32C file checksum."""
from __future__ import annotations

import hashlib
import struct
from typing import Any

import crc32c

from threefs.common import placement
from threefs.common.errors import FSError
from threefs.gateway.hdfs.identity import UserMap
from threefs.mgmtd.routing import Routing
from threefs.proto import meta_pb2 as mp

BYTES_PER_CRC = 512
_TYPES = {mp.FILE: "FILE", mp.DIRECTORY: "DIRECTORY", mp.SYMLINK: "SYMLINK"}


def replication(inode: mp.Inode, routing: Routing) -> int:
    """A file's replication: the length of the chain holding its first chunk (0 for directories and symlinks)."""
    if inode.type != mp.FILE:
        return 0
    try:
        table = routing.table(inode.layout.table_id, inode.layout.table_version)
        chain_id = placement.chain_of(inode.layout, 0, list(table.chain_ids))
        return len(routing.chain(chain_id).targets)
    except (FSError, ValueError, IndexError, ZeroDivisionError):
        return 0


def file_status(inode: mp.Inode, suffix: str, users: UserMap, routing: Routing, children: int = 0) -> dict[str, Any]:
    """The FileStatus object of `inode` as WebHDFS shapes it (times in ms, permission as an octal string)."""
    is_file = inode.type == mp.FILE
    out: dict[str, Any] = {
        "accessTime": inode.atime_ns // 1_000_000 if is_file else 0,
        "blockSize": inode.layout.chunk_size if is_file else 0,
        "childrenNum": children,
        "fileId": inode.id,
        "group": users.group_name(inode.gid),
        "length": inode.length if is_file else 0,
        "modificationTime": inode.mtime_ns // 1_000_000,
        "owner": users.owner_name(inode.uid),
        "pathSuffix": suffix,
        "permission": format(inode.perm & 0o7777, "o"),
        "replication": replication(inode, routing),
        "storagePolicy": 0,
        "type": _TYPES.get(inode.type, "FILE"),
    }
    if inode.type == mp.SYMLINK:
        out["symlink"] = inode.target
    return out


class Checksum:
    """HDFS's MD5-of-MD5-of-CRC32C: a CRC32C per 512 bytes, an MD5 of each block's CRCs, an MD5 of those."""

    def __init__(self, block_size: int) -> None:
        self.block_size = block_size
        self.block_md5s: list[bytes] = []
        self._crcs = bytearray()
        self._in_block = 0
        self._tail = b""

    def update(self, data: bytes) -> None:
        """Feed the next bytes of the file (any size)."""
        view = memoryview(self._tail + bytes(data)) if self._tail else memoryview(data)
        pos = 0
        while len(view) - pos >= BYTES_PER_CRC:
            self._crc(view[pos:pos + BYTES_PER_CRC])
            pos += BYTES_PER_CRC
        self._tail = bytes(view[pos:])

    def _crc(self, piece: memoryview) -> None:
        self._crcs += struct.pack(">I", crc32c.crc32c(piece))
        self._in_block += len(piece)
        if self._in_block >= self.block_size:
            self._end_block()

    def _end_block(self) -> None:
        self.block_md5s.append(hashlib.md5(self._crcs).digest())
        self._crcs = bytearray()
        self._in_block = 0

    def result(self) -> dict[str, Any]:
        """The FileChecksum object (algorithm, hex bytes, length 28)."""
        if self._tail:
            self._crc(memoryview(self._tail))
            self._tail = b""
        if self._in_block or not self.block_md5s:
            self._end_block()
        crc_per_block = self.block_size // BYTES_PER_CRC if len(self.block_md5s) > 1 else 0
        md5 = hashlib.md5(b"".join(self.block_md5s)).digest()
        raw = struct.pack(">iq", BYTES_PER_CRC, crc_per_block) + md5
        return {"algorithm": f"MD5-of-{crc_per_block}MD5-of-{BYTES_PER_CRC}CRC32C", "bytes": raw.hex(),
                "length": len(raw)}
