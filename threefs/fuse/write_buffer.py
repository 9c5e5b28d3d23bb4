"""A handle's write buffer: one contiguous dirty range, kept as the writers' own buffers.

pyfuse3 hands each FUSE write over as a new bytes object. Large ones are kept by reference and go to
storage as a gathered payload, so a sequential writer's bytes are not copied again in the daemon
(joining 1 MiB writes into a 4 MiB chunk cost a copy, plus the bytearray's regrowth). Small writes
are copied into an owned tail, so a stream of 4 KiB writes does not become thousands of pieces.
"""
from __future__ import annotations

SMALL_PIECE = 64 << 10      # writes below this are copied into the tail rather than kept by reference
TAIL_MAX = 1 << 20          # an owned tail grows up to this size before a new one starts


class WriteBuffer:
    """Bytes [off, off + len) of a file, waiting to be sent to storage."""

    def __init__(self) -> None:
        self.parts: list[bytes | bytearray | memoryview] = []
        self.off = 0
        self.size = 0
        self._tail: bytearray | None = None     # the last part, when it is ours to extend

    def __len__(self) -> int:
        return self.size

    def __bool__(self) -> bool:
        return self.size > 0

    @property
    def end(self) -> int:
        return self.off + self.size

    def add(self, off: int, data: bytes | bytearray | memoryview) -> None:
        """Append `data` written at `off`: the buffer must be empty or end at `off`."""
        n = memoryview(data).nbytes
        if not n:
            return
        if not self.size:
            self.off = off
        elif off != self.end:
            raise ValueError(f"write at {off} is not contiguous with the buffer's end {self.end}")
        if n < SMALL_PIECE:
            if self._tail is None or len(self._tail) + n > TAIL_MAX:
                self._tail = bytearray()
                self.parts.append(self._tail)
            self._tail += data
        else:
            self.parts.append(data)
            self._tail = None
        self.size += n

    def take(self, n: int | None = None) -> tuple[list[memoryview], int]:
        """Remove the first `n` bytes (all by default): (their pieces, their offset in the file)."""
        off = self.off
        if n is None or n >= self.size:
            parts = [memoryview(p) for p in self.parts]
            self.clear()
            return parts, off
        out: list[memoryview] = []
        left = n
        while left:
            view = memoryview(self.parts[0])
            if view.nbytes <= left:
                out.append(view)
                self.parts.pop(0)
                left -= view.nbytes
            else:
                out.append(view[:left])
                self.parts[0] = view[left:]     # a view: the tail, if this was it, is no longer extendable
                left = 0
        if not self.parts or not isinstance(self.parts[-1], bytearray):
            self._tail = None
        self.off += n
        self.size -= n
        return out, off

    def copy_into(self, dest: bytearray) -> None:
        """Copy the buffered bytes into `dest` at their file offsets (a small file's whole content)."""
        pos = self.off
        for p in self.parts:
            n = memoryview(p).nbytes
            dest[pos:pos + n] = p
            pos += n

    def clear(self) -> None:
        self.parts = []
        self.size = 0
        self._tail = None
