"""Expected failures of the imaging engine, as values.

The engine never raises for bad input: it returns a :class:`Failure` carrying a
stable reason code and one sentence a person can act on. The codes travel in
events (``validated``, ``variant-done``) and in the catalog, so they never change
meaning once published.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Reason(StrEnum):
    """Stable reason codes for expected engine failures."""

    # probe / validation
    EMPTY_FILE = "empty_file"
    UNSUPPORTED_FORMAT = "unsupported_format"
    EXTENSION_MISMATCH = "extension_mismatch"
    TRUNCATED = "truncated"
    TOO_MANY_PIXELS = "too_many_pixels"
    FILE_TOO_LARGE = "file_too_large"
    DECODE_ERROR = "decode_error"
    # RAW development
    RAW_UNSUPPORTED = "raw_unsupported"
    RAW_NO_IMAGE_DATA = "raw_no_image_data"
    RAW_GARBAGE = "raw_garbage"
    RAW_BLACK = "raw_black"
    RAW_TIMEOUT = "raw_timeout"
    # rendering
    RENDER_FAILED = "render_failed"
    ENCODE_FAILED = "encode_failed"
    INVALID_SPEC = "invalid_spec"
    # pipeline
    SOURCE_MISSING = "source_missing"


@dataclass(frozen=True, slots=True)
class Failure:
    """An expected failure: ``reason`` is a :class:`Reason`, ``message`` one sentence."""

    reason: Reason
    message: str

    def as_dict(self) -> dict[str, str]:
        """Return ``{"reason": code, "message": sentence}`` for JSON output."""
        return {"reason": self.reason.value, "message": self.message}
