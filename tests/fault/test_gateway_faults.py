"""The S3 and WebHDFS gateways while a storage node is SIGKILLed under their uploads and downloads: every
upload the gateway acknowledged reads back byte-exact (and is identical on every replica once the node has
resynced); an upload it did not acknowledge failed with a server error, never a silent partial object;
downloads never return wrong bytes."""
from __future__ import annotations

import asyncio
import random
import signal
import socket
import threading
import urllib.error
import urllib.parse
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


def _start_upload(url: str, headers: dict[str, str], body: bytes, sent: int) -> socket.socket:
    """Send a PUT with its full Content-Length but only the first `sent` bytes of the body (an upload in
    progress); the caller closes the socket to abandon it."""
    u = urllib.parse.urlsplit(url)
    s = socket.create_connection((u.hostname, u.port), timeout=30)
    head = [f"PUT {u.path}{'?' + u.query if u.query else ''} HTTP/1.1", f"Host: {u.netloc}",
            f"Content-Length: {len(body)}", *(f"{k}: {v}" for k, v in headers.items()), "", ""]
    s.sendall("\r\n".join(head).encode() + body[:sent])
    return s


@pytest.mark.timeout(300)
def test_temporaries_of_uploads_cut_short_by_a_gateway_kill_are_swept(tmp_path) -> None:
    boto3 = pytest.importorskip("boto3")
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    h = Harness(tmp_path, s3=True, hdfs=True)
    h.dc._plan()
    h.dc.proc("meta", 100).args += ["--client-timeout", "2"]           # a dead gateway's sessions go soon
    for role in ("s3", "hdfs"):
        h.dc.proc(role, 1).args += ["--sweep-interval", "0.3", "--sweep-stale-after", "1"]
    h.up()
    sockets: list[socket.socket] = []
    try:
        st = h.dc.status()
        creds = Credentials(st["s3_access_key"], st["s3_secret_key"])
        s3 = boto3.client("s3", endpoint_url=st["s3"], aws_access_key_id=creds.access_key,
                          aws_secret_access_key=creds.secret_key, region_name="us-east-1")
        s3.create_bucket(Bucket="bkt")
        body = random.Random("sweep").randbytes(4 * MIB)
        hdfs = st["webhdfs"]
        fs = h.observer.client

        # An upload in progress through each gateway: the headers and a quarter of the body.
        req = AWSRequest(method="PUT", url=f"{st['s3']}/bkt/obj.bin", data=body,
                         headers={"x-amz-content-sha256": "UNSIGNED-PAYLOAD"})
        SigV4Auth(creds, "s3", "us-east-1").add_auth(req)
        sockets.append(_start_upload(req.url, dict(req.headers.items()), body, len(body) // 4))
        try:
            urllib.request.urlopen(urllib.request.Request(f"{hdfs}/bkt/h.bin?op=CREATE&user.name=root",
                                                          method="PUT"), timeout=30)
        except urllib.error.HTTPError as e:
            location = e.headers["Location"]
        sockets.append(_start_upload(location, {}, body, len(body) // 4))

        def temporaries() -> list[str]:
            names = h.observer.call(fs.listdir("/bkt")) + [
                f".s3-uploads/{n}" for n in h.observer.call(fs.listdir("/bkt/.s3-uploads"))]
            return sorted(n for n in names if ".tmp-" in n or n.endswith(".webhdfs-upload"))

        wait_until(lambda: len(temporaries()) == 2, 60, "both uploads writing their temporaries")
        # A live upload is never swept: its gateway's client holds the temporary's write session.
        live = temporaries()
        h.observer.call(asyncio.sleep(3))          # several sweeps, each past the staleness age
        assert temporaries() == live

        for role in ("s3", "hdfs"):
            h.fault("sweep", role, 1, signal.SIGKILL)      # mid-upload: the temporaries stay behind
        for s in sockets:
            s.close()
        assert temporaries() == live
        for role in ("s3", "hdfs"):
            h.restart(role, 1)
        wait_until(lambda: not temporaries(), 60, "the restarted gateways sweeping the temporaries")
        assert h.observer.call(fs.listdir("/.webhdfs-uploads")) == []      # their markers went too
        assert "obj.bin" not in h.observer.call(fs.listdir("/bkt")) and "h.bin" not in h.observer.call(fs.listdir("/bkt"))

        # Uploads through the restarted gateways work, and leave nothing behind.
        s3.put_object(Bucket="bkt", Key="obj.bin", Body=body)
        _webhdfs_put(hdfs, "/bkt/h.bin", body)
        assert s3.get_object(Bucket="bkt", Key="obj.bin")["Body"].read() == body
        assert _webhdfs_get(hdfs, "/bkt/h.bin") == body
        assert not temporaries() and h.observer.call(fs.listdir("/.webhdfs-uploads")) == []
    finally:
        for s in sockets:
            s.close()
        h.close()
