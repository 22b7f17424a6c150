"""Object keys: one validation rule shared by every backend.

A Darkroom key is a ``/``-separated relative path such as
``variants/01J9.../w1024.avif``. The rule is the intersection of what S3
accepts (any UTF-8 string up to 1024 bytes, see the S3 User Guide, "Naming
Amazon S3 objects") and what maps safely onto a POSIX filesystem, so a key
accepted here behaves the same on :class:`~darkroom_common.storage.FilesystemStore`
and :class:`~darkroom_common.storage.S3Store`.
"""

from __future__ import annotations

from darkroom_common.errors import InvalidKey

MAX_KEY_BYTES = 1024
"""Longest key in UTF-8 bytes (the S3 limit)."""


def _is_control(ch: str) -> bool:
    code = ord(ch)
    # C0 controls, DEL and C1 controls (Unicode general category Cc).
    return code < 0x20 or 0x7F <= code <= 0x9F


def validate_key(key: str) -> str:
    """Check that ``key`` is a safe object key and return it unchanged.

    Rejected: the empty string; more than :data:`MAX_KEY_BYTES` UTF-8 bytes;
    text that cannot be encoded as UTF-8 (lone surrogates); a leading ``/``;
    empty segments (``a//b``, a trailing ``/``); ``.`` or ``..`` segments;
    backslashes; control characters (C0 ``U+0000..U+001F``, DEL ``U+007F``
    and C1 ``U+0080..U+009F``).

    Raises:
        InvalidKey: naming the first rule the key breaks.
    """
    if not isinstance(key, str):
        raise InvalidKey(f"an object key must be a str, not {type(key).__name__}")
    if not key:
        raise InvalidKey("an object key must not be empty")
    try:
        size = len(key.encode("utf-8"))
    except UnicodeEncodeError as exc:
        raise InvalidKey(f"object key {key!r} is not valid UTF-8 text") from exc
    if size > MAX_KEY_BYTES:
        raise InvalidKey(f"object key is {size} UTF-8 bytes long; the limit is {MAX_KEY_BYTES}")
    if key.startswith("/"):
        raise InvalidKey(f"object key {key!r} must be relative (no leading '/')")
    if "\\" in key:
        raise InvalidKey(f"object key {key!r} must not contain a backslash")
    if any(_is_control(ch) for ch in key):
        raise InvalidKey(f"object key {key!r} must not contain control characters")
    for segment in key.split("/"):
        if segment == "":
            raise InvalidKey(f"object key {key!r} has an empty path segment")
        if segment in (".", ".."):
            raise InvalidKey(f"object key {key!r} has a {segment!r} path segment")
    return key


def validate_prefix(prefix: str) -> str:
    """Check a listing prefix and return it unchanged.

    A prefix is ``""`` (everything) or a key, optionally followed by one ``/``
    (``"variants/"``). Its last segment may be partial: ``"variants/01J"``
    matches ``variants/01J9...``.

    Raises:
        InvalidKey: the prefix, without its trailing ``/``, is not a valid key.
    """
    if prefix == "":
        return prefix
    validate_key(prefix.removesuffix("/"))
    return prefix


def join_key(*parts: str) -> str:
    """Join key parts with ``/`` after validating each one, and return the key.

    Each part is itself a valid key (it may contain ``/``), so
    ``join_key("variants", image_id, "w1024.avif")`` cannot be steered out of
    its prefix by a hostile ``image_id`` such as ``"../originals"``.

    Raises:
        InvalidKey: no parts, a part is not a valid key, or the joined key is
            longer than :data:`MAX_KEY_BYTES`.
    """
    if not parts:
        raise InvalidKey("join_key needs at least one part")
    for part in parts:
        validate_key(part)
    return validate_key("/".join(parts))
