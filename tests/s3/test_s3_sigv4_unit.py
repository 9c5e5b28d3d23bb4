"""SigV4 verification against botocore's own signer (no server): canonicalization of awkward paths
and queries, presigned URLs, and the failure modes."""
from __future__ import annotations

import datetime as dt
from urllib.parse import urlsplit

import pytest
from botocore.auth import S3SigV4Auth, S3SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from threefs.gateway.s3 import sigv4
from threefs.gateway.s3.errors import S3Error

CREDS = Credentials("AKTEST", "secret/with+chars")


def _check(req: AWSRequest, method: str, now: dt.datetime | None = None, secret: str = CREDS.secret_key) -> None:
    u = urlsplit(req.url)
    headers: dict[str, list[str]] = {}
    for k, v in req.headers.items():
        headers.setdefault(k.lower(), []).append(v if isinstance(v, str) else v.decode())
    headers.setdefault("host", [u.netloc])
    from urllib.parse import parse_qsl
    query = dict(parse_qsl(u.query, keep_blank_values=True))
    signed = sigv4.parse_request(method, headers, query)
    assert signed is not None
    sigv4.verify(signed, secret, method, u.path, u.query, headers, now or dt.datetime.now(dt.UTC))


@pytest.mark.parametrize("path", ["/b/plain", "/b/sp%20ace/%2Bplus%3D", "/b/%C3%BC%C3%B1i/c%C3%B6de",
                                  "/b/a~b/c%21%27%28%29%2A", "/b"])
@pytest.mark.parametrize("query", ["", "uploads=", "list-type=2&prefix=a%2Fb&delimiter=%2F",
                                   "partNumber=3&uploadId=abc", "prefix=x%20y&max-keys=5&encoding-type=url"])
def test_header_signatures_from_botocore_verify(path, query):
    url = "http://127.0.0.1:9000" + path + ("?" + query if query else "")
    req = AWSRequest(method="GET", url=url, headers={"x-amz-content-sha256": sigv4.EMPTY_SHA256})
    S3SigV4Auth(CREDS, "s3", "us-east-1").add_auth(req)
    _check(req, "GET")
    with pytest.raises(S3Error) as e:
        _check(req, "GET", secret="not-the-secret")
    assert e.value.code == "SignatureDoesNotMatch"
    with pytest.raises(S3Error) as e:
        _check(req, "PUT")
    assert e.value.code == "SignatureDoesNotMatch"


def test_presigned_from_botocore_verifies_and_expires():
    req = AWSRequest(method="GET", url="http://127.0.0.1:9000/b/some%20key", headers={})
    S3SigV4QueryAuth(CREDS, "s3", "us-east-1", expires=60).add_auth(req)
    _check(req, "GET")
    with pytest.raises(S3Error) as e:
        _check(req, "GET", now=dt.datetime.now(dt.UTC) + dt.timedelta(seconds=120))
    assert e.value.code == "AccessDenied" and "expired" in e.value.message


def test_malformed_authorization():
    for auth, want in [("AWS4-HMAC-SHA256 Credential=x", "AuthorizationHeaderMalformed"),
                       ("AWS AK:sig", "InvalidRequest"), ("Bearer x", "AuthorizationHeaderMalformed")]:
        with pytest.raises(S3Error) as e:
            sigv4.parse_request("GET", {"authorization": [auth], "x-amz-date": ["20260101T000000Z"],
                                        "x-amz-content-sha256": [sigv4.EMPTY_SHA256]}, {})
        assert e.value.code == want
    assert sigv4.parse_request("GET", {}, {}) is None          # anonymous


def test_every_status_code_has_an_s3_error():
    from threefs.common.errors import TABLE, Code, make_error
    from threefs.gateway.s3.errors import from_fs_error
    for code, row in TABLE.items():
        if code == Code.OK:
            continue
        err = from_fs_error(make_error(code, "boom"), "/b/k")
        assert err.code == row.s3_code and err.code and 400 <= err.status <= 599
        assert f"<Code>{row.s3_code}</Code>".encode() in err.xml("RID")
