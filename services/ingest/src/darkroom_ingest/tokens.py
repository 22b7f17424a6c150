"""Upload ids of presigned uploads: signed tokens, so completing needs no server state.

An upload id is ``<base64url(JSON claims)>.<base64url(HMAC-SHA256(claims))>``
with claims gallery id, image id, the uploader's filename, content type,
profile, and an expiry (Unix seconds). Any API instance holding the same secret
(``DARKROOM_INGEST_UPLOAD_TOKEN_SECRET``) can complete it, before or after a
restart. The claims are readable by the holder (they reveal nothing it did not
send) but cannot be altered. Source: RFC 2104 (HMAC), RFC 4648 §5 (base64url).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
from dataclasses import asdict, dataclass

from pydantic import TypeAdapter, ValidationError

from darkroom_schemas.base import Identifier


class InvalidToken(Exception):
    """The upload id is malformed, forged or expired."""


@dataclass(frozen=True, slots=True)
class UploadClaims:
    """What an upload id stands for.

    Attributes:
        gallery_id: the gallery the upload goes to.
        image_id: the new image (and job) id.
        filename: the uploader's file name.
        content_type: the Content-Type the presigned PUT must send, if fixed.
        profile: the variant profile the uploader asked for, if any.
        expires_at: Unix time (s) after which the upload can no longer be completed.
    """

    gallery_id: str
    image_id: str
    filename: str
    content_type: str | None
    profile: str | None
    expires_at: int


_ID = TypeAdapter(Identifier)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign(claims: UploadClaims, secret: bytes) -> str:
    """Return the upload id for ``claims``."""
    body = json.dumps(asdict(claims), separators=(",", ":"), sort_keys=True).encode()
    mac = hmac.new(secret, body, hashlib.sha256).digest()
    return f"{_b64(body)}.{_b64(mac)}"


def verify(token: str, secret: bytes, *, now: float | None = None) -> UploadClaims:
    """Return the claims of a valid, unexpired upload id.

    Raises:
        InvalidToken: malformed, signed with another secret, or expired.
    """
    body_text, dot, mac_text = token.partition(".")
    if not dot:
        raise InvalidToken("not an upload id")
    try:
        body, mac = _unb64(body_text), _unb64(mac_text)
    except (binascii.Error, ValueError) as exc:
        raise InvalidToken("not an upload id") from exc
    if not hmac.compare_digest(mac, hmac.new(secret, body, hashlib.sha256).digest()):
        raise InvalidToken("the upload id's signature does not match")
    try:
        claims = UploadClaims(**json.loads(body))
        _ID.validate_python(claims.gallery_id)
        _ID.validate_python(claims.image_id)
    except (TypeError, ValueError, ValidationError) as exc:
        raise InvalidToken("the upload id's claims are invalid") from exc
    if claims.expires_at < (time.time() if now is None else now):
        raise InvalidToken("the upload id has expired")
    return claims
