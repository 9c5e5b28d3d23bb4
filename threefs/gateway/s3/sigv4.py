"""AWS Signature Version 4 verification: header and presigned-query auth, and aws-chunked bodies.

Follows the AWS spec: canonical request -> string to sign -> HMAC chain keyed by the secret.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import quote, unquote

from threefs.gateway.s3.errors import S3Error

ALGORITHM = "AWS4-HMAC-SHA256"
UNSIGNED = "UNSIGNED-PAYLOAD"
STREAMING = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
STREAMING_TRAILER = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"
STREAMING_UNSIGNED_TRAILER = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
MAX_SKEW = dt.timedelta(minutes=15)
MAX_PRESIGN_EXPIRES = 7 * 24 * 3600
_AUTH_RE = re.compile(r"AWS4-HMAC-SHA256\s+(.*)$", re.DOTALL)
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


@dataclass
class Credential:
    """The credential scope of a signed request."""

    access_key: str
    date: str
    region: str
    service: str

    @property
    def scope(self) -> str:
        return f"{self.date}/{self.region}/{self.service}/aws4_request"

    @classmethod
    def parse(cls, text: str, error: str) -> Credential:
        parts = text.split("/")
        if len(parts) != 5 or parts[4] != "aws4_request" or not parts[0]:
            raise S3Error(error, f"malformed credential {text!r}")
        if parts[3] != "s3":
            raise S3Error(error, f"credential service must be 's3', not {parts[3]!r}")
        return cls(parts[0], parts[1], parts[2], parts[3])


@dataclass
class SignedRequest:
    """What a request claims: credential, signed headers, signature, time, payload hash."""

    credential: Credential
    signed_headers: list[str]
    signature: str
    amz_date: dt.datetime
    amz_date_text: str
    payload_hash: str
    presigned: bool
    expires: int = 0


def signing_key(secret: str, cred: Credential) -> bytes:
    """The derived key: HMAC chain over date, region, service."""
    k = hmac.new(("AWS4" + secret).encode(), cred.date.encode(), hashlib.sha256).digest()
    for part in (cred.region, cred.service, "aws4_request"):
        k = hmac.new(k, part.encode(), hashlib.sha256).digest()
    return k


def _enc(s: str) -> str:
    return quote(s, safe="-_.~")


def canonical_query(raw_query: str, drop_signature: bool) -> str:
    """Sorted, re-encoded query string (X-Amz-Signature removed for presigned URLs)."""
    pairs: list[tuple[str, str]] = []
    for item in raw_query.split("&") if raw_query else []:
        if not item:
            continue
        k, _, v = item.partition("=")
        k, v = unquote(k.replace("+", "%20")), unquote(v.replace("+", "%20"))
        if drop_signature and k == "X-Amz-Signature":
            continue
        pairs.append((_enc(k), _enc(v)))
    return "&".join(f"{k}={v}" for k, v in sorted(pairs))


def canonical_request(method: str, raw_path: str, raw_query: str, headers: dict[str, list[str]],
                      signed: list[str], payload_hash: str, presigned: bool) -> str:
    """The canonical request of the AWS spec (S3 flavour: the path is encoded once)."""
    uri = quote(unquote(raw_path), safe="/~") or "/"
    lines = []
    for name in signed:
        values = headers.get(name)
        if values is None:
            raise S3Error("SignatureDoesNotMatch" if not presigned else "AccessDenied",
                          f"signed header {name!r} is missing from the request")
        lines.append(name + ":" + ",".join(" ".join(v.split()) for v in values))
    return "\n".join([method, uri, canonical_query(raw_query, presigned), "\n".join(lines) + "\n",
                      ";".join(signed), payload_hash])


def string_to_sign(amz_date: str, cred: Credential, creq: str) -> str:
    return "\n".join([ALGORITHM, amz_date, cred.scope, hashlib.sha256(creq.encode()).hexdigest()])


def _parse_date(text: str, error: str) -> dt.datetime:
    try:
        return dt.datetime.strptime(text, "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.UTC)
    except ValueError:
        raise S3Error(error, f"malformed X-Amz-Date {text!r}") from None


def parse_request(method: str, headers: dict[str, list[str]], query: dict[str, str]) -> SignedRequest | None:
    """The signature a request carries (None: anonymous); malformed auth raises S3Error."""
    auth = (headers.get("authorization") or [""])[0]
    if auth:
        if auth.startswith("AWS "):
            raise S3Error("InvalidRequest", "signature version 2 is not supported; use AWS4-HMAC-SHA256")
        m = _AUTH_RE.match(auth)
        if not m:
            raise S3Error("AuthorizationHeaderMalformed", "unsupported authorization type")
        fields = {}
        for part in m.group(1).split(","):
            k, _, v = part.strip().partition("=")
            fields[k] = v
        if not {"Credential", "SignedHeaders", "Signature"} <= fields.keys():
            raise S3Error("AuthorizationHeaderMalformed", "Credential, SignedHeaders and Signature are required")
        cred = Credential.parse(fields["Credential"], "AuthorizationHeaderMalformed")
        date_text = (headers.get("x-amz-date") or headers.get("date") or [""])[0]
        if "x-amz-date" not in headers:
            raise S3Error("AccessDenied", "X-Amz-Date header is required")
        when = _parse_date(date_text, "AccessDenied")
        payload = (headers.get("x-amz-content-sha256") or [""])[0]
        if not payload:
            raise S3Error("InvalidRequest", "missing required header x-amz-content-sha256")
        if payload not in (UNSIGNED, STREAMING, STREAMING_UNSIGNED_TRAILER, STREAMING_TRAILER) \
                and not _HEX64.match(payload):
            raise S3Error("InvalidArgument", "x-amz-content-sha256 must be a SHA-256 hex digest or a payload mode")
        signed = fields["SignedHeaders"].split(";")
        if "host" not in signed:
            raise S3Error("AuthorizationHeaderMalformed", "the host header must be signed")
        return SignedRequest(cred, signed, fields["Signature"], when, date_text, payload, False)
    if "AWSAccessKeyId" in query or "Signature" in query:
        raise S3Error("InvalidRequest", "signature version 2 is not supported; use AWS4-HMAC-SHA256")
    if "X-Amz-Signature" in query or "X-Amz-Credential" in query:
        need = ("X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Date", "X-Amz-Expires", "X-Amz-SignedHeaders",
                "X-Amz-Signature")
        missing = [n for n in need if n not in query]
        if missing:
            raise S3Error("AuthorizationQueryParametersError", f"missing {', '.join(missing)}")
        if query["X-Amz-Algorithm"] != ALGORITHM:
            raise S3Error("AuthorizationQueryParametersError", "X-Amz-Algorithm must be AWS4-HMAC-SHA256")
        cred = Credential.parse(query["X-Amz-Credential"], "AuthorizationQueryParametersError")
        try:
            expires = int(query["X-Amz-Expires"])
        except ValueError:
            raise S3Error("AuthorizationQueryParametersError", "X-Amz-Expires must be a number") from None
        if not 0 < expires <= MAX_PRESIGN_EXPIRES:
            raise S3Error("AuthorizationQueryParametersError",
                          f"X-Amz-Expires must be between 1 and {MAX_PRESIGN_EXPIRES} seconds")
        when = _parse_date(query["X-Amz-Date"], "AuthorizationQueryParametersError")
        payload = (headers.get("x-amz-content-sha256") or [UNSIGNED])[0]
        return SignedRequest(cred, query["X-Amz-SignedHeaders"].split(";"), query["X-Amz-Signature"], when,
                             query["X-Amz-Date"], payload, True, expires)
    return None


def verify(req: SignedRequest, secret: str, method: str, raw_path: str, raw_query: str,
           headers: dict[str, list[str]], now: dt.datetime) -> bytes:
    """Check time and signature; returns the signing key (for aws-chunked bodies)."""
    if req.presigned:
        if now < req.amz_date - MAX_SKEW:
            raise S3Error("AccessDenied", "request is not valid yet")
        if now > req.amz_date + dt.timedelta(seconds=req.expires):
            raise S3Error("AccessDenied", "Request has expired")
    elif abs(now - req.amz_date) > MAX_SKEW:
        raise S3Error("RequestTimeTooSkewed", "the difference between the request time and the server's time "
                                              "is too large")
    if req.credential.date != req.amz_date_text[:8]:
        raise S3Error("SignatureDoesNotMatch", "credential date does not match X-Amz-Date")
    payload = UNSIGNED if req.presigned and "x-amz-content-sha256" not in headers else req.payload_hash
    creq = canonical_request(method, raw_path, raw_query, headers, req.signed_headers, payload, req.presigned)
    key = signing_key(secret, req.credential)
    expect = hmac.new(key, string_to_sign(req.amz_date_text, req.credential, creq).encode(),
                      hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expect, req.signature):
        raise S3Error("SignatureDoesNotMatch",
                      "The request signature we calculated does not match the signature you provided.")
    return key


class ChunkedDecoder:
    """Decode an aws-chunked body, checking each chunk signature when the payload mode is signed."""

    def __init__(self, read_line: Callable[[], Awaitable[bytes]], read_exact: Callable[[int], Awaitable[bytes]],
                 key: bytes | None, req: SignedRequest) -> None:
        self.read_line = read_line
        self.read_exact = read_exact
        self.key = key
        self.req = req
        self.prev = req.signature
        self.signed = req.payload_hash in (STREAMING, STREAMING_TRAILER)
        self.trailers: dict[str, str] = {}

    def _check(self, data: bytes, sig: str) -> None:
        if not self.signed:
            return
        assert self.key is not None
        sts = "\n".join(["AWS4-HMAC-SHA256-PAYLOAD", self.req.amz_date_text, self.req.credential.scope, self.prev,
                         EMPTY_SHA256, hashlib.sha256(data).hexdigest()])
        expect = hmac.new(self.key, sts.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expect, sig):
            raise S3Error("SignatureDoesNotMatch", "a chunk signature does not match")
        self.prev = sig

    async def chunks(self) -> AsyncIterator[bytes]:
        """Yield the decoded chunks; trailers (checksums) land in `self.trailers`."""
        while True:
            line = (await self.read_line()).rstrip(b"\r\n").decode("latin-1")
            size_text, _, ext = line.partition(";")
            try:
                size = int(size_text, 16)
            except ValueError:
                raise S3Error("IncompleteBody", "malformed aws-chunked body") from None
            sig = ext.partition("chunk-signature=")[2].strip()
            if self.signed and not sig:
                raise S3Error("SignatureDoesNotMatch", "a chunk carries no signature")
            data = await self.read_exact(size) if size else b""
            if len(data) != size:
                raise S3Error("IncompleteBody", "the body ended inside a chunk")
            self._check(data, sig)
            if size == 0:
                break
            if await self.read_line() not in (b"\r\n", b"\n"):
                raise S3Error("IncompleteBody", "malformed aws-chunked body")
            yield data
        while True:
            line = (await self.read_line()).rstrip(b"\r\n").decode("latin-1")
            if not line:
                break
            k, _, v = line.partition(":")
            if k.strip().lower() != "x-amz-trailer-signature":
                self.trailers[k.strip().lower()] = v.strip()


def presign_now() -> dt.datetime:
    """The clock used for skew and expiry checks."""
    return dt.datetime.now(dt.UTC)
