"""The ONE key-prefix table: every key threefs stores in the KV engine starts with one of these.

Prefixes are 4 ASCII bytes, as in 3FS. Inode ids are little-endian (spreads sequential ids, as
3FS does for FoundationDB shards); cluster ids are big-endian (so scans come out in id order).

| Prefix | Key layout                                        | Value (owner)                          |
|--------|---------------------------------------------------|----------------------------------------|
| INOD   | INOD + inode id (LE u64)                          | inode (meta)                           |
| DENT   | DENT + parent inode id (LE u64) + name (utf-8)    | directory entry (meta)                 |
| INOS   | INOS + inode id (LE u64) + session id (16 bytes)  | open-for-write file session (meta)     |
| IDEM   | IDEM + request id (16 bytes) + client id (16)     | idempotent-request result (meta)       |
| CLIS   | CLIS + client id (16 bytes)                       | client liveness lease (meta)           |
| XATR   | XATR + inodeId(LE64) + attribute name             | extended attribute value (meta)        |
| INLN   | INLN + inode id (LE u64)                          | content of a small inline file (meta)  |
| DMTM   | DMTM + directory inode id (LE u64)                | when its entries last changed (meta)   |
| DLEA   | DLEA + directory inode id (LE u64)                | a client's lease on its entries (meta) |
| META   | META, META-<node id %08d>                         | meta server map / heartbeats (meta)    |
| SING   | SING + name                                       | singletons: counters, lease (all)      |
| USER   | USER + uid (BE u32)                               | user and token (mgmtd)                 |
| S3AK   | S3AK + access key (utf-8)                         | S3 access key -> secret, uid (mgmtd)   |
| NODE   | NODE + node id (BE u32)                           | persistent node info (mgmtd)           |
| CHIT   | CHIT + chain table id (BE u32) + version (BE u32) | chain table (mgmtd)                    |
| CHIF   | CHIF + chain id (BE u32)                          | chain info (mgmtd)                     |
| TGIF   | TGIF + target id (BE u64)                         | last known target location (mgmtd)     |
| CONF   | CONF + node type (len u8 + utf-8) + BE u64(max - version) | config, newest first (mgmtd)   |
"""
from __future__ import annotations

INODE = b"INOD"
DIRENT = b"DENT"
INODE_SESSION = b"INOS"
IDEMPOTENCY = b"IDEM"
CLIENT_LEASE = b"CLIS"
XATTR = b"XATR"
INLINE_DATA = b"INLN"
DIR_MTIME = b"DMTM"
DIR_LEASE = b"DLEA"
META_SERVERS = b"META"
SINGLETON = b"SING"
USER = b"USER"
S3_ACCESS_KEY = b"S3AK"
NODE = b"NODE"
CHAIN_TABLE = b"CHIT"
CHAIN_INFO = b"CHIF"
TARGET_INFO = b"TGIF"
CONFIG = b"CONF"

PREFIXES = (
    INODE, DIRENT, INODE_SESSION, IDEMPOTENCY, CLIENT_LEASE, XATTR, INLINE_DATA, META_SERVERS, SINGLETON,
    USER, S3_ACCESS_KEY, NODE, CHAIN_TABLE, CHAIN_INFO, TARGET_INFO, CONFIG,
    DIR_MTIME, DIR_LEASE,
)
assert len(set(PREFIXES)) == len(PREFIXES) and all(len(p) == 4 for p in PREFIXES)

_U64_MAX = (1 << 64) - 1


def _le64(n: int) -> bytes:
    return n.to_bytes(8, "little")


def _be32(n: int) -> bytes:
    return n.to_bytes(4, "big")


def _uuid16(value: bytes, what: str) -> bytes:
    if len(value) != 16:
        raise ValueError(f"{what} must be 16 bytes, got {len(value)}")
    return value


def prefix_end(prefix: bytes) -> bytes:
    """The smallest key greater than every key that starts with `prefix` (ValueError if none exists)."""
    stripped = prefix.rstrip(b"\xff")
    if not stripped:
        raise ValueError(f"no key follows every key with prefix {prefix!r}")
    return stripped[:-1] + bytes([stripped[-1] + 1])


def inode_key(inode_id: int) -> bytes:
    """INOD + LE u64 inode id."""
    return INODE + _le64(inode_id)


def dirent_prefix(parent_id: int) -> bytes:
    """Prefix of every entry of directory `parent_id`."""
    return DIRENT + _le64(parent_id)


def dirent_key(parent_id: int, name: str) -> bytes:
    """DENT + LE u64 parent id + utf-8 name."""
    return dirent_prefix(parent_id) + name.encode()


def session_prefix(inode_id: int) -> bytes:
    """Prefix of every file session of `inode_id`."""
    return INODE_SESSION + _le64(inode_id)


def session_key(inode_id: int, session_id: bytes) -> bytes:
    """INOS + LE u64 inode id + 16-byte session id."""
    return session_prefix(inode_id) + _uuid16(session_id, "session id")


def idem_key(client_id: bytes, request_id: bytes) -> bytes:
    """IDEM + 16-byte request id + 16-byte client id (3FS's order)."""
    return IDEMPOTENCY + _uuid16(request_id, "request id") + _uuid16(client_id, "client id")


def client_lease_key(client_id: bytes) -> bytes:
    """CLIS + 16-byte client id: when the client last proved it is alive."""
    return CLIENT_LEASE + _uuid16(client_id, "client id")


def meta_server_key(node_id: int) -> bytes:
    """META-<node id, 8 decimal digits>: one meta server's heartbeat record."""
    return META_SERVERS + b"-%08d" % node_id


def single_key(name: str) -> bytes:
    """SING + name: a named singleton (counter, lease, version)."""
    return SINGLETON + name.encode()


def user_key(uid: int) -> bytes:
    """USER + BE u32 uid."""
    return USER + _be32(uid)


def s3_key(access_key: str) -> bytes:
    """S3AK + utf-8 access key."""
    return S3_ACCESS_KEY + access_key.encode()


def node_key(node_id: int) -> bytes:
    """NODE + BE u32 node id."""
    return NODE + _be32(node_id)


def chain_table_key(table_id: int, version: int) -> bytes:
    """CHIT + BE u32 chain table id + BE u32 version."""
    return CHAIN_TABLE + _be32(table_id) + _be32(version)


def chain_info_key(chain_id: int) -> bytes:
    """CHIF + BE u32 chain id."""
    return CHAIN_INFO + _be32(chain_id)


def target_info_key(target_id: int) -> bytes:
    """TGIF + BE u64 target id."""
    return TARGET_INFO + target_id.to_bytes(8, "big")


def config_key(node_type: str, version: int) -> bytes:
    """CONF + length-prefixed node type + BE u64(max - version), so the newest config sorts first."""
    t = node_type.encode()
    if len(t) > 255:
        raise ValueError("node type longer than 255 bytes")
    return CONFIG + bytes([len(t)]) + t + (_U64_MAX - version).to_bytes(8, "big")


def xattr_prefix(inode_id: int) -> bytes:
    """XATR + inode: the extended attributes of one inode, sorted by name."""
    return XATTR + _le64(inode_id)


def inline_data_key(inode_id: int) -> bytes:
    """INLN + inode: the content of a small file kept in meta instead of on storage."""
    return INLINE_DATA + _le64(inode_id)


def dir_mtime_key(dir_id: int) -> bytes:
    """DMTM + directory: the time (LE u64 ns) an entry was last added to or removed from it."""
    return DIR_MTIME + _le64(dir_id)


def dir_lease_key(dir_id: int) -> bytes:
    """DLEA + directory: the DirLease a client holds on the directory's entries."""
    return DIR_LEASE + _le64(dir_id)


def xattr_key(inode_id: int, name: str) -> bytes:
    return xattr_prefix(inode_id) + name.encode()
