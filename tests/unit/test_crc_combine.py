"""crc32c_combine: the CRC of a concatenation from its parts, for any lengths."""
from __future__ import annotations

import os

import pytest
from crc32c import crc32c

from threefs.common.crc_combine import crc32c_combine


@pytest.mark.parametrize("la,lb", [(0, 0), (0, 7), (9, 0), (1, 1), (100, 65536), (65536, 65536), (12345, 777),
                                   (1 << 20, 3), (3, 1 << 20)])
def test_combine_matches_crc_of_concatenation(la, lb):
    a, b = os.urandom(la), os.urandom(lb)
    assert crc32c_combine(crc32c(a), crc32c(b), lb) == crc32c(a + b)


def test_combine_folds_many_blocks():
    blocks = [os.urandom(65536) for _ in range(8)]
    total = 0
    for blk in blocks:
        total = crc32c_combine(total, crc32c(blk), len(blk))
    assert total == crc32c(b"".join(blocks))
