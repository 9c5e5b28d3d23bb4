"""CRC32C of a concatenation from the CRCs of its parts (zlib's crc32_combine, for Castagnoli).

Lets the chunk engine checksum each byte once: block CRCs are computed from the data, and the CRC
of the whole payload and of the whole chunk are combined from them instead of two more passes.
"""
from __future__ import annotations

from functools import lru_cache

_POLY = 0x82F63B78  # CRC-32C (Castagnoli), reflected


def _multmodp(a: int, b: int) -> int:
    """a * b modulo the CRC polynomial (reflected bit order)."""
    m, p = 1 << 31, 0
    while True:
        if a & m:
            p ^= b
            if not a & (m - 1):
                return p
        m >>= 1
        b = (b >> 1) ^ _POLY if b & 1 else b >> 1


def _x2n_table() -> list[int]:
    table, p = [], 1 << 30  # x^1
    for _ in range(32):
        table.append(p)
        p = _multmodp(p, p)
    return table


_X2N = _x2n_table()


@lru_cache(maxsize=64)
def _shift_tables(length: int) -> tuple[tuple[int, ...], ...]:
    """Byte-sliced tables of the linear map crc -> crc * x^(8*length): 4 lookups per combine."""
    p, n, k = 1 << 31, length, 3
    while n:
        if n & 1:
            p = _multmodp(_X2N[k & 31], p)
        n >>= 1
        k += 1
    return tuple(tuple(_multmodp(p, b << (8 * i)) for b in range(256)) for i in range(4))


def crc32c_combine(crc1: int, crc2: int, len2: int) -> int:
    """CRC32C of A+B given crc1 = CRC32C(A), crc2 = CRC32C(B) and len2 = len(B)."""
    if len2 <= 0:
        return crc1
    t0, t1, t2, t3 = _shift_tables(len2)
    return t0[crc1 & 0xFF] ^ t1[(crc1 >> 8) & 0xFF] ^ t2[(crc1 >> 16) & 0xFF] ^ t3[crc1 >> 24] ^ crc2
