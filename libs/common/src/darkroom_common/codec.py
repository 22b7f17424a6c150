"""A Faust codec for Darkroom events: Confluent-framed Avro both ways.

Registered under :data:`CODEC_NAME`. Decoding never raises: bytes that are not
a valid event become an :class:`UndecodableEvent` carrying the original payload
and the error, so the agent can send them to its dead-letter topic instead of
Faust dropping them silently (Faust skips a message whose value fails to decode).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from faust.serializers import codecs

from darkroom_schemas import WireFormatError, WireRecord, decode, encode

CODEC_NAME = "darkroom"


@dataclass(frozen=True, slots=True)
class UndecodableEvent:
    """A message value that is not a Darkroom event.

    Attributes:
        payload: the message value, byte for byte.
        error: why it could not be decoded (one sentence).
    """

    payload: bytes
    error: str


class DarkroomCodec(codecs.Codec):
    """Faust codec: schema models ⇄ framed Avro bytes (see :mod:`darkroom_schemas.wire`)."""

    def _dumps(self, obj: Any) -> bytes:
        if isinstance(obj, WireRecord):
            return encode(obj)
        if isinstance(obj, UndecodableEvent):  # re-sent by a repartition (group_by): keep as-is
            return obj.payload
        if isinstance(obj, bytes | bytearray):
            return bytes(obj)
        raise TypeError(f"{type(obj).__name__} is not a Darkroom event; cannot encode it")

    def _loads(self, s: bytes) -> Any:
        try:
            return decode(s)
        except WireFormatError as exc:
            return UndecodableEvent(payload=bytes(s), error=str(exc))


def register_codec() -> None:
    """Register :class:`DarkroomCodec` with Faust under ``"darkroom"`` (idempotent)."""
    if CODEC_NAME not in codecs.codecs:
        codecs.register(CODEC_NAME, DarkroomCodec())
