"""The S3 and WebHDFS gateways while a storage node is SIGKILLed under their uploads and downloads: every
upload the gateway acknowledged reads back byte-exact (and is identical on every replica once the node has
resynced); an upload it did not acknowledge failed with a server error, never a silent partial object;
downloads never return wrong bytes."""
from __future__ import annotations

import random
import signal
import threading
import urllib.error
import urllib.request

import pytest
from fault_util import Harness, wait_until

MIB = 1 << 20


def _webhdfs_put(base: str, path: str, data: bytes) -> None:
    """WebHDFS CREATE: the namenode step answers 307, the data goes to the Location it names."""
    req = urllib.request.Request(f"{base}{path}?op=CREATE&user.name=root&overwrite=true", method="PUT")
    try:
        urllib.request.urlopen(req, timeout=60)
        raise AssertionError("CREATE must redirect")
    except urllib.error.HTTPError as e:
        assert e.code == 307, e.read()
        location = e.headers["Location"]
    with urllib.request.urlopen(urllib.request.Request(location, data=data, method="PUT"), timeout=120) as r:
        assert r.status == 201


def _webhdfs_get(base: str, path: str) -> bytes:
    with urllib.request.urlopen(f"{base}{path}?op=OPEN&user.name=root", timeout=120) as r:
        return r.read()


@pytest.mark.timeout(300)
def test_gateway_uploads_and_downloads_across_a_storage_node_kill(tmp_path) -> None:
    boto3 = pytest.importorskip("boto3")
    from botocore.config import Config

    h = Harness(tmp_path, s3=True, hdfs=True).up()
    stop = threading.Event()
    threads: list[threading.Thread] = []
    try:
        st = h.dc.status()
        s3 = boto3.client("s3", endpoint_url=st["s3"], aws_access_key_id=st["s3_access_key"],
                          aws_secret_access_key=st["s3_secret_key"], region_name="us-east-1",
                          config=Config(signature_version="s3v4", s3={"addressing_style": "path"},
                                        retries={"max_attempts": 1}, read_timeout=120))
        hdfs = st["webhdfs"]
        s3.create_bucket(Bucket="bkt")
        rng = random.Random("gateway-kill")
        base = rng.randbytes(8 * MIB)
        s3.put_object(Bucket="bkt", Key="base.bin", Body=base)

        acked: dict[str, bytes] = {"/bkt/base.bin": base}
        failed: list[str] = []
        wrong: list[str] = []
        done = {"s3": 0, "hdfs": 0, "get": 0}

        def uploads(kind: str, put, size: int) -> None:
            """Upload new objects one after another until stopped, recording which were acknowledged."""
            i = 0
            while not stop.is_set():
                body = random.Random(f"{kind}-{i}").randbytes(size + i)
                try:
                    put(f"{kind}-{i}.bin", body)
                except Exception as e:  # noqa: BLE001 - recorded: an upload that was not acknowledged
                    failed.append(f"{kind}-{i}: {e!r}")
                else:
                    acked[f"/bkt/{kind}-{i}.bin"] = body
                    done[kind] += 1
                i += 1

        def s3_uploads() -> None:
            uploads("s3", lambda key, body: s3.put_object(Bucket="bkt", Key=key, Body=body), 12 * MIB)

        def hdfs_uploads() -> None:
            uploads("hdfs", lambda key, body: _webhdfs_put(hdfs, f"/bkt/{key}", body), 10 * MIB)

        def downloads() -> None:
            while not stop.is_set():
                for get in (lambda: s3.get_object(Bucket="bkt", Key="base.bin")["Body"].read(),
                            lambda: _webhdfs_get(hdfs, "/bkt/base.bin")):
                    try:
                        got = get()
                    except Exception as e:  # noqa: BLE001 - a download may fail (5xx), never lie
                        failed.append(f"get: {e!r}")
                        continue
                    if got != base:
                        wrong.append(f"a download returned {len(got)} bytes that differ from the object")
                    done["get"] += 1

        threads = [threading.Thread(target=f, daemon=True) for f in (s3_uploads, hdfs_uploads, downloads)]
        for t in threads:
            t.start()
        wait_until(lambda: done["s3"] >= 1 and done["hdfs"] >= 1, 120, "uploads before the kill")
        before = dict(done)
        victim = h.node_at(1, 0)
        h.fault("gateway", "storage", victim, signal.SIGKILL)      # it holds chain heads: uploads are mid-chain
        wait_until(lambda: all(done[k] >= before[k] + 2 for k in done), 120, "uploads and downloads after the kill")
        stop.set()
        for t in threads:
            t.join(timeout=180)
        assert not wrong, wrong
        # The gateways ride out the failover: the client library retries until mgmtd reconfigures the chains.
        assert not failed, failed
        for path, data in acked.items():
            assert s3.get_object(Bucket="bkt", Key=path.split("/", 2)[2])["Body"].read() == data, path
        h.restart("storage", victim)
        h.wait_healed(timeout=120)
        h.extra_files = acked
        report = h.verify_files()
        assert report.bytes_verified == sum(len(d) for d in acked.values())
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=60)
        h.close()
