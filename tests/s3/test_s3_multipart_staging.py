"""Multipart completion without copying: parts of the upload's part size are written in place into a staging
file that becomes the object; other layouts fall back to copying. Every case checks bytes and the md5-N ETag."""
from __future__ import annotations

import hashlib
import os
import random
import re
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest
from botocore.exceptions import ClientError
from s3_util import MIN_PART


def md5n(parts: list[bytes]) -> str:
    return '"' + hashlib.md5(b"".join(hashlib.md5(p).digest() for p in parts)).hexdigest() + f'-{len(parts)}"'


def metric(gateway, name: str, labels: str = "") -> float:
    """One sample of the gateway's /metrics (0 when absent)."""
    text = urllib.request.urlopen(gateway.metrics, timeout=30).read().decode()
    m = re.search(rf"^{re.escape(name)}{re.escape(labels)} (\S+)$", text, re.MULTILINE)
    return float(m.group(1)) if m else 0.0


class Upload:
    """One multipart upload driven through boto3, with what the checks need."""

    def __init__(self, s3, bucket: str, key: str, fs) -> None:
        self.s3, self.bucket, self.key, self.fs = s3, bucket, key, fs
        self.id = s3.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
        self.dir = f"/{bucket}/.s3-uploads/{self.id}"
        self.etags: dict[int, str] = {}

    def put(self, n: int, data: bytes, s3=None) -> str:
        s3 = s3 or self.s3
        self.etags[n] = s3.upload_part(Bucket=self.bucket, Key=self.key, UploadId=self.id, PartNumber=n,
                                       Body=data)["ETag"]
        return self.etags[n]

    def complete(self, numbers: list[int] | None = None) -> dict:
        numbers = numbers or sorted(self.etags)
        return self.s3.complete_multipart_upload(Bucket=self.bucket, Key=self.key, UploadId=self.id,
                                                 MultipartUpload={"Parts": [{"PartNumber": n, "ETag": self.etags[n]}
                                                                            for n in numbers]})

    def staging_ino(self) -> int:
        return self.fs.stat(f"{self.dir}/.staging").st_ino

    def check(self, parts: list[bytes], done: dict) -> None:
        assert done["ETag"] == md5n(parts)
        got = self.s3.get_object(Bucket=self.bucket, Key=self.key)
        assert got["Body"].read() == b"".join(parts)
        assert got["ETag"] == done["ETag"] and got["ContentLength"] == sum(map(len, parts))
        assert not self.fs.exists(self.dir)


@pytest.fixture
def copied(gateway):
    """Bytes copied at completion since the test began."""
    start = metric(gateway, "threefs_s3_multipart_copied_bytes_total")
    return lambda: metric(gateway, "threefs_s3_multipart_copied_bytes_total") - start


def test_uniform_parts_complete_without_copy(s3, bucket, fs, gateway, copied):
    parts = [os.urandom(MIN_PART) for _ in range(3)] + [os.urandom(1234)]
    up = Upload(s3, bucket, "u/obj", fs)
    for n, p in enumerate(parts, 1):
        up.put(n, p)
    ino = up.staging_ino()
    staged_before = metric(gateway, "threefs_s3_multipart_completions_total", '{path="staging"}')
    done = up.complete()
    up.check(parts, done)
    assert fs.stat(f"/{bucket}/u/obj").st_ino == ino            # the staging file IS the object
    assert copied() == 0
    assert metric(gateway, "threefs_s3_multipart_completions_total", '{path="staging"}') == staged_before + 1


def test_out_of_order_concurrent_parts(s3, bucket, fs, gateway, copied):
    parts = [os.urandom(MIN_PART) for _ in range(8)] + [os.urandom(MIN_PART // 3)]
    up = Upload(s3, bucket, "conc", fs)
    order = list(range(1, 9))
    random.Random(7).shuffle(order)
    clients = [gateway.client() for _ in range(4)]
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda i: up.put(order[i], parts[order[i] - 1], clients[i % 4]), range(len(order))))
    up.put(9, parts[8])
    ino = up.staging_ino()
    up.check(parts, up.complete())
    assert fs.stat(f"/{bucket}/conc").st_ino == ino
    assert copied() == 0


def test_small_last_part_first_is_copied_alone(s3, bucket, fs, copied):
    """The last part arrives before the part size is known: it gets its own file and only it is copied."""
    parts = [os.urandom(MIN_PART), os.urandom(MIN_PART), os.urandom(999)]
    up = Upload(s3, bucket, "lastfirst", fs)
    up.put(3, parts[2])
    up.put(2, parts[1])
    up.put(1, parts[0])
    ino = up.staging_ino()
    up.check(parts, up.complete())
    assert fs.stat(f"/{bucket}/lastfirst").st_ino == ino
    assert copied() == 999


def test_reuploaded_parts_last_upload_wins(s3, bucket, fs, copied):
    a, b, c = (os.urandom(MIN_PART) for _ in range(3))
    p1, tail_long, tail_short = os.urandom(MIN_PART), os.urandom(MIN_PART), os.urandom(10)
    up = Upload(s3, bucket, "again", fs)
    up.put(1, p1)
    for data in (a, b, c):          # in place, then (its range is recorded) a file, then in place again
        up.put(2, data)
    up.put(3, tail_long)
    up.put(3, tail_short)           # shorter re-upload: the staging range keeps stale bytes past 10
    up.put(4, os.urandom(MIN_PART))  # staged but not listed: cut off at completion
    parts = [p1, c, tail_short]
    up.check(parts, up.complete([1, 2, 3]))
    assert copied() == 10           # only the re-uploaded tail, which could not overwrite its recorded range


def test_failed_uploads_keep_the_recorded_part(s3, bucket, fs):
    up = Upload(s3, bucket, "fail", fs)
    first, second = os.urandom(MIN_PART), os.urandom(MIN_PART)
    bad_md5 = "AAAAAAAAAAAAAAAAAAAAAA=="
    with pytest.raises(ClientError) as e:               # a failed first upload into the staging range
        s3.upload_part(Bucket=bucket, Key="fail", UploadId=up.id, PartNumber=1, Body=first, ContentMD5=bad_md5)
    assert e.value.response["Error"]["Code"] == "BadDigest"
    up.put(1, first)
    with pytest.raises(ClientError) as e:               # a failed re-upload leaves the recorded part intact
        s3.upload_part(Bucket=bucket, Key="fail", UploadId=up.id, PartNumber=1, Body=second, ContentMD5=bad_md5)
    assert e.value.response["Error"]["Code"] == "BadDigest"
    up.put(2, b"end")
    up.check([first, b"end"], up.complete())


def test_nonuniform_parts_fall_back_to_copy(s3, bucket, fs, gateway, copied):
    parts = [os.urandom(MIN_PART + 1000), os.urandom(2 * MIN_PART), os.urandom(MIN_PART + 5), os.urandom(777)]
    up = Upload(s3, bucket, "mixed", fs)
    for n, p in enumerate(parts, 1):
        up.put(n, p)
    before = metric(gateway, "threefs_s3_multipart_completions_total", '{path="copy"}')
    up.check(parts, up.complete())
    assert metric(gateway, "threefs_s3_multipart_completions_total", '{path="copy"}') == before + 1
    assert copied() == sum(map(len, parts))     # part 1 was staged: everything is assembled in a fresh file


def test_skipped_part_numbers_fall_back_to_copy(s3, bucket, fs, copied):
    parts = {1: os.urandom(MIN_PART), 3: os.urandom(MIN_PART), 4: os.urandom(50)}
    up = Upload(s3, bucket, "gaps", fs)
    for n, p in parts.items():
        up.put(n, p)
    up.check(list(parts.values()), up.complete())
    assert copied() == sum(map(len, parts.values()))


def test_upload_part_copy_is_staged(s3, bucket, fs, copied):
    src = os.urandom(3 * MIN_PART + 321)
    s3.put_object(Bucket=bucket, Key="src", Body=src)
    up = Upload(s3, bucket, "copied", fs)
    for n in range(1, 5):
        start, end = (n - 1) * MIN_PART, min(n * MIN_PART, len(src)) - 1
        up.etags[n] = s3.upload_part_copy(Bucket=bucket, Key="copied", UploadId=up.id, PartNumber=n,
                                          CopySource={"Bucket": bucket, "Key": "src"},
                                          CopySourceRange=f"bytes={start}-{end}")["CopyPartResult"]["ETag"]
    ino = up.staging_ino()
    up.check([src[i:i + MIN_PART] for i in range(0, len(src), MIN_PART)], up.complete())
    assert fs.stat(f"/{bucket}/copied").st_ino == ino
    assert copied() == 0


@pytest.mark.parametrize("size", [2 * MIN_PART, 100])
def test_single_part_upload(s3, bucket, fs, copied, size):
    data = os.urandom(size)
    up = Upload(s3, bucket, "one", fs)
    up.put(1, data)
    up.check([data], up.complete())
    assert copied() == 0                # staged (large) or its own file renamed into place (small)


def test_writer_in_flight_forces_the_copy_path(s3, bucket, fs, copied):
    """A claim on a staging range (an in-place write in flight, or left by a crashed gateway) keeps the
    staging file from becoming the object: the parts are copied instead."""
    parts = [os.urandom(MIN_PART), os.urandom(MIN_PART), os.urandom(7)]
    up = Upload(s3, bucket, "busy", fs)
    for n, p in enumerate(parts, 1):
        up.put(n, p)
    fs.mknod(f"{up.dir}/.w-00009")
    up.check(parts, up.complete())
    assert copied() == sum(map(len, parts))


def test_failed_completion_leaves_upload_usable(s3, bucket, fs):
    parts = [os.urandom(MIN_PART), os.urandom(30)]
    up = Upload(s3, bucket, "retry", fs)
    for n, p in enumerate(parts, 1):
        up.put(n, p)
    with pytest.raises(ClientError) as e:
        s3.complete_multipart_upload(Bucket=bucket, Key="retry", UploadId=up.id, MultipartUpload={
            "Parts": [{"PartNumber": 1, "ETag": up.etags[1]}, {"PartNumber": 2, "ETag": '"0000"'}]})
    assert e.value.response["Error"]["Code"] == "InvalidPart"
    assert not fs.exists(f"{up.dir}/.sealed")        # the seal is lifted: parts may still go in place
    ino = up.staging_ino()
    up.check(parts, up.complete())
    assert fs.stat(f"/{bucket}/retry").st_ino == ino


def test_abort_removes_staging(s3, bucket, fs):
    up = Upload(s3, bucket, "gone", fs)
    up.put(1, os.urandom(MIN_PART))
    assert fs.exists(f"{up.dir}/.staging")
    s3.abort_multipart_upload(Bucket=bucket, Key="gone", UploadId=up.id)
    assert not fs.exists(up.dir) and fs.listdir(f"/{bucket}/.s3-uploads") == []
