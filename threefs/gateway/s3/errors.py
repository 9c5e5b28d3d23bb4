"""S3 error responses: `S3Error` and its XML body; file-system errors map through the ONE table."""
from __future__ import annotations

from xml.sax.saxutils import escape

from threefs.common.errors import Code, FSError, mapping

# S3 error codes that have no file-system status code behind them: code -> HTTP status.
STATUS: dict[str, int] = {
    "AccessDenied": 403, "BadDigest": 400, "BucketAlreadyExists": 409, "BucketAlreadyOwnedByYou": 409,
    "BucketNotEmpty": 409, "EntityTooSmall": 400, "EntityTooLarge": 400, "IncompleteBody": 400,
    "InternalError": 500, "InvalidAccessKeyId": 403, "InvalidArgument": 400, "InvalidBucketName": 400,
    "InvalidDigest": 400, "InvalidPart": 400, "InvalidPartOrder": 400, "InvalidRange": 416, "InvalidRequest": 400,
    "InvalidLocationConstraint": 400, "KeyTooLongError": 400, "MalformedXML": 400, "MetadataTooLarge": 400,
    "MethodNotAllowed": 405, "MissingContentLength": 411, "MissingSecurityHeader": 400, "NoSuchBucket": 404,
    "NoSuchKey": 404, "NoSuchUpload": 404, "NotImplemented": 501, "NotModified": 304, "PreconditionFailed": 412,
    "RequestTimeTooSkewed": 403, "SignatureDoesNotMatch": 403, "XAmzContentSHA256Mismatch": 400,
    "AuthorizationHeaderMalformed": 400, "AuthorizationQueryParametersError": 400, "InvalidObjectName": 400,
    "ServiceUnavailable": 503, "SlowDown": 503, "InvalidStorageClass": 400,
}


class S3Error(Exception):
    """An S3 error: code, HTTP status and message, rendered as the S3 XML error document."""

    def __init__(self, code: str, message: str = "", status: int | None = None, resource: str = "") -> None:
        super().__init__(message or code)
        self.code = code
        self.message = message or code
        self.status = status if status is not None else STATUS.get(code, 400)
        self.resource = resource

    def xml(self, request_id: str) -> bytes:
        """The S3 error document."""
        return (f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{escape(self.code)}</Code>'
                f'<Message>{escape(self.message)}</Message><Resource>{escape(self.resource)}</Resource>'
                f'<RequestId>{request_id}</RequestId></Error>').encode()


def from_fs_error(e: FSError | OSError, resource: str = "") -> S3Error:
    """Map a file-system error to its S3 error through the shared table."""
    code = e.code if isinstance(e, FSError) else Code.INTERNAL
    row = mapping(code)
    text = e.strerror or str(e)
    return S3Error(row.s3_code or "InternalError", text, row.s3_status, resource)
