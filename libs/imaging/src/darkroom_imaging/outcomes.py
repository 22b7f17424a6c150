"""Expected failures of the imaging engine, as values.

The engine never raises for bad input: it returns a :class:`Failure` carrying a
stable reason code and one sentence a person can act on. The codes travel in
events (``validated``, ``variant-done``) and in the catalog, so they never change
meaning once published. The sentence holds no internals (library names, Python
reprs, file-system paths); what the library said goes in :attr:`Failure.detail`,
which services log with the job id and never publish.
"""

from __future__ import annotations

from dataclasses import dataclass, field
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
    """An expected failure: ``reason`` is a :class:`Reason`, ``message`` one sentence.

    ``message`` is for the person who uploaded the file: a sentence ending in a period,
    without library names, Python reprs or paths. ``detail`` is the library's own text
    (libvips, LibRaw, pillow-heif...) for the operator's log, or None; it is not part of
    equality and not of :meth:`as_dict`, so events and API answers never carry it.
    """

    reason: Reason
    message: str
    detail: str | None = field(default=None, compare=False)

    def as_dict(self) -> dict[str, str]:
        """Return ``{"reason": code, "message": sentence}`` for JSON output."""
        return {"reason": self.reason.value, "message": self.message}
