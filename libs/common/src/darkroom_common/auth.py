"""Bearer API keys with scopes, shared by the upload and catalog APIs.

A key has a name (for logs and audit, never the key itself) and scopes:

* ``read``: GET anything (jobs, galleries, images, the gallery page);
* ``upload``: create uploads and upload URLs;
* ``admin``: everything, including retry, start, delete and gallery settings.

Keys come from settings (``DARKROOM_AUTH__API_KEYS``, a JSON list of
``{"name": …, "key": …, "scopes": […]}``) and/or a secrets file of the same
JSON (``DARKROOM_AUTH__API_KEYS_FILE``). Keys are compared in constant time on their
SHA-256 digests. A missing or unknown key is 401 (``unauthenticated``); a
known key without the scope is 403 (``forbidden``). Source: RFC 6750 (Bearer
tokens) §3.1 for the status codes and ``WWW-Authenticate`` header.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr, TypeAdapter, ValidationError

from darkroom_common.errors import ConfigurationError, PermanentError

Scope = Literal["read", "upload", "admin"]
SCOPES: tuple[Scope, ...] = ("read", "upload", "admin")


class ApiKey(BaseModel):
    """One API key: ``name`` for logs, the secret ``key``, its ``scopes``."""

    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    key: SecretStr = Field(min_length=16)
    scopes: frozenset[Scope] = frozenset({"read"})


class AuthSettings(BaseModel):
    """Where API keys come from; nested in a service's settings as ``auth``."""

    api_keys: list[ApiKey] = Field(default_factory=list)
    api_keys_file: Path | None = None


class Unauthenticated(PermanentError):
    """No key, a malformed header or an unknown key: HTTP 401."""

    default_reason = "unauthenticated"
    status = 401


class Forbidden(PermanentError):
    """A known key without the needed scope: HTTP 403."""

    default_reason = "forbidden"
    status = 403


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the key's name and scopes."""

    name: str
    scopes: frozenset[str]

    def allows(self, scope: Scope) -> bool:
        """Whether this caller holds ``scope`` (``admin`` holds every scope)."""
        return scope in self.scopes or "admin" in self.scopes


class KeyRing:
    """The keys a service accepts, indexed by the SHA-256 of each key.

    Raises:
        ConfigurationError: the keys file is unreadable or invalid, or two keys share a value.
    """

    def __init__(self, keys: list[ApiKey]) -> None:
        self._by_digest: dict[bytes, ApiKey] = {}
        for k in keys:
            digest = _digest(k.key.get_secret_value())
            if digest in self._by_digest:
                raise ConfigurationError(
                    f"API keys {k.name!r} and {self._by_digest[digest].name!r} are the same key"
                )
            self._by_digest[digest] = k

    @classmethod
    def from_settings(cls, settings: AuthSettings) -> KeyRing:
        """Build from inline keys plus the keys file, if any."""
        keys = list(settings.api_keys)
        if settings.api_keys_file is not None:
            keys += load_keys_file(settings.api_keys_file)
        return cls(keys)

    def __len__(self) -> int:
        return len(self._by_digest)

    def authenticate(self, authorization: str | None) -> Principal:
        """Return the caller of an ``Authorization: Bearer <key>`` header value.

        Raises:
            Unauthenticated: the header is missing, not Bearer, or the key is unknown.
        """
        if not authorization:
            raise Unauthenticated("send an API key as 'Authorization: Bearer <key>'")
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthenticated("the Authorization header must be 'Bearer <key>'")
        wanted = _digest(token.strip())
        for digest, key in self._by_digest.items():
            if hmac.compare_digest(digest, wanted):
                return Principal(key.name, frozenset(key.scopes))
        raise Unauthenticated("the API key is not valid")

    def authorize(self, authorization: str | None, scope: Scope) -> Principal:
        """Authenticate, then require ``scope``.

        Raises:
            Unauthenticated: see :meth:`authenticate` (401).
            Forbidden: the key lacks ``scope`` (403).
        """
        principal = self.authenticate(authorization)
        if not principal.allows(scope):
            raise Forbidden(f"the API key {principal.name!r} lacks the {scope!r} scope")
        return principal


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


def load_keys_file(path: Path) -> list[ApiKey]:
    """Read a JSON list of keys from ``path``.

    Raises:
        ConfigurationError: the file is missing, not JSON, or a key is invalid
            (the message names the file, never a key's value).
    """
    try:
        return TypeAdapter(list[ApiKey]).validate_python(json.loads(path.read_text("utf-8")))
    except OSError as exc:
        raise ConfigurationError(f"cannot read the API keys file {path}: {exc.strerror}") from exc
    except (json.JSONDecodeError, ValidationError) as exc:
        detail = (
            exc.msg
            if isinstance(exc, json.JSONDecodeError)
            else f"{exc.error_count()} invalid entries"
        )
        raise ConfigurationError(f"the API keys file {path} is invalid: {detail}") from exc
