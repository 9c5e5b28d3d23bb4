"""Test helpers for the S3 gateway: a small independent SigV4 signer for requests boto3 does not make over plain HTTP
(UNSIGNED-PAYLOAD, aws-chunked streaming, presigned URLs at a chosen time)."""
from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import http.client
import os
import subprocess
import sys
from urllib.parse import quote, urlsplit

MIN_PART = 64 << 10       # the test gateway's --min-part-size
VHOST_DOMAIN = "s3.localtest"   # the test gateway's --domain (resolved to loopback by the tests themselves)


def _key(secret: str, date: str) -> bytes:
    k = hmac.new(("AWS4" + secret).encode(), date.encode(), hashlib.sha256).digest()
    for p in ("us-east-1", "s3", "aws4_request"):
        k = hmac.new(k, p.encode(), hashlib.sha256).digest()
    return k


def _sign(key: bytes, text: str) -> str:
    return hmac.new(key, text.encode(), hashlib.sha256).hexdigest()


def signed_request(endpoint: str, method: str, path: str, access: str, secret: str, *, body: bytes = b"",
                   headers: dict[str, str] | None = None, payload: str | None = None,
                   when: dt.datetime | None = None, query: str = "", corrupt: bool = False) -> tuple[int, bytes, dict[str, str]]:
    """Send one header-signed request; returns (status, body, headers)."""
    when = when or dt.datetime.now(dt.UTC)
    amz = when.strftime("%Y%m%dT%H%M%SZ")
    host = urlsplit(endpoint).netloc
    payload = payload or hashlib.sha256(body).hexdigest()
    h = {"host": host, "x-amz-date": amz, "x-amz-content-sha256": payload}
    h.update({k.lower(): v for k, v in (headers or {}).items()})
    signed = sorted(h)
    creq = "\n".join([method, quote(path, safe="/~"), query, "".join(f"{k}:{h[k]}\n" for k in signed),
                      ";".join(signed), payload])
    scope = f"{amz[:8]}/us-east-1/s3/aws4_request"
    sts = "\n".join(["AWS4-HMAC-SHA256", amz, scope, hashlib.sha256(creq.encode()).hexdigest()])
    key = _key(secret, amz[:8])
    sig = _sign(key, sts)
    h["authorization"] = f"AWS4-HMAC-SHA256 Credential={access}/{scope}, SignedHeaders={';'.join(signed)}, " \
                         f"Signature={sig}"
    if payload.startswith("STREAMING-AWS4-HMAC-SHA256-PAYLOAD"):
        body = chunked_body(body, key, amz, scope, sig, corrupt=corrupt)
    conn = http.client.HTTPConnection(host, timeout=30)
    try:
        conn.request(method, quote(path, safe="/~") + ("?" + query if query else ""), body=body, headers=h)
        r = conn.getresponse()
        return r.status, r.read(), {k.lower(): v for k, v in r.getheaders()}
    finally:
        conn.close()


def chunked_body(data: bytes, key: bytes, amz: str, scope: str, seed: str, size: int = 64 << 10,
                 corrupt: bool = False) -> bytes:
    """aws-chunked encoding with a signature per chunk (the last chunk is empty)."""
    out = bytearray()
    prev = seed
    empty = hashlib.sha256(b"").hexdigest()
    pieces = [data[i:i + size] for i in range(0, len(data), size)] + [b""]
    for p in pieces:
        sig = _sign(key, "\n".join(["AWS4-HMAC-SHA256-PAYLOAD", amz, scope, prev, empty,
                                    hashlib.sha256(p).hexdigest()]))
        if corrupt and p:
            sig = "0" * 64
        out += f"{len(p):x};chunk-signature={sig}\r\n".encode() + p + b"\r\n"
        prev = sig
    return bytes(out)


def presigned_url(endpoint: str, method: str, path: str, access: str, secret: str, when: dt.datetime,
                  expires: int) -> str:
    """A presigned URL as if made at `when`."""
    amz = when.strftime("%Y%m%dT%H%M%SZ")
    host = urlsplit(endpoint).netloc
    scope = f"{amz[:8]}/us-east-1/s3/aws4_request"
    params = {"X-Amz-Algorithm": "AWS4-HMAC-SHA256", "X-Amz-Credential": f"{access}/{scope}", "X-Amz-Date": amz,
              "X-Amz-Expires": str(expires), "X-Amz-SignedHeaders": "host"}
    q = "&".join(f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}" for k, v in sorted(params.items()))
    creq = "\n".join([method, quote(path, safe="/~"), q, f"host:{host}\n", "host", "UNSIGNED-PAYLOAD"])
    sts = "\n".join(["AWS4-HMAC-SHA256", amz, scope, hashlib.sha256(creq.encode()).hexdigest()])
    return f"{endpoint}{quote(path, safe='/~')}?{q}&X-Amz-Signature={_sign(_key(secret, amz[:8]), sts)}"


def cli(*args: str) -> subprocess.CompletedProcess:
    """Run `python -m threefs ARGS` (never raises on a non-zero exit)."""
    return subprocess.run([sys.executable, "-m", "threefs", *args], capture_output=True, text=True, timeout=60,
                          check=False, env=dict(os.environ))
