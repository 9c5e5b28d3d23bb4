"""The mappings of recently read committed chunk versions, kept between reads.

Mapping a chunk file, filling its page tables and unmapping it again cost ~90 us per MiB on these
VMs, as much as the CRC check of the bytes; a chunk read again and again (the replica that caches a
chunk serves all its reads) is mapped once. An entry is dropped whenever the chunk's metadata
changes, so a file that is committed over or removed is not held (page_map.is_mapped) longer than
the reads already sending from it. The mapped pages are the page cache's: they count in the
process's RSS while resident, but the kernel reclaims them as any cached file page (a later read
then finds them missing and goes to the disk path).

One cache serves all the targets of a storage node (entries are keyed by target and chunk), so the
number of mappings a process holds stays bounded however many targets it owns (the kernel caps
mappings per process: vm.max_map_count).
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable

from threefs.storage.page_map import FileMap

Key = tuple          # (version, (size, checksum, block CRCs)) of the mapped content
DEFAULT_CAPACITY = 4096   # chunks per node (`threefs storage --mapped-chunks`)


class MapCache:
    """Up to `capacity` (owner, chunk id) -> (content key, FileMap), least recently used dropped first."""

    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        self.capacity = capacity
        self._maps: OrderedDict[tuple[Hashable, bytes], tuple[Key, FileMap]] = OrderedDict()
        self._lock = threading.Lock()
        self._drops = 0             # bumped by every drop: a put that raced one is not kept

    def get(self, owner: Hashable, chunk_id: bytes, key: Key) -> FileMap | None:
        with self._lock:
            hit = self._maps.get((owner, chunk_id))
            if hit is None or hit[0] != key:
                return None
            self._maps.move_to_end((owner, chunk_id))
            return hit[1]

    def generation(self) -> int:
        """Pass to put(): a drop since then means the mapping may be of stale content."""
        return self._drops

    def put(self, owner: Hashable, chunk_id: bytes, key: Key, fmap: FileMap, generation: int) -> None:
        with self._lock:
            if generation != self._drops:
                return
            self._maps[(owner, chunk_id)] = (key, fmap)
            self._maps.move_to_end((owner, chunk_id))
            while len(self._maps) > self.capacity:
                self._maps.popitem(last=False)

    def drop(self, owner: Hashable, chunk_id: bytes) -> None:
        """The chunk's metadata changed (call before its old files are removed or recycled)."""
        with self._lock:
            self._drops += 1
            self._maps.pop((owner, chunk_id), None)

    def clear(self, owner: Hashable | None = None) -> int:
        """Drop the entries of `owner` (every entry if None); returns how many there were."""
        with self._lock:
            self._drops += 1
            if owner is None:
                n = len(self._maps)
                self._maps.clear()
                return n
            gone = [k for k in self._maps if k[0] == owner]
            for k in gone:
                del self._maps[k]
            return len(gone)

    def shrink(self) -> None:
        """The process ran out of mappings (mmap failed with ENOMEM): give back the older half."""
        with self._lock:
            for _ in range(len(self._maps) // 2 + 1):
                if not self._maps:
                    break
                self._maps.popitem(last=False)

    def __len__(self) -> int:
        return len(self._maps)
