"""The Darkroom error hierarchy.

Every error a stage can raise says whether trying again may help. The agents
use :attr:`DarkroomError.retriable` to choose between a bounded retry with
backoff and an immediate hand-off to the stage's dead-letter topic::

    DarkroomError                      reason_code, retriable
    ├── TransientError                 retriable = True
    │   ├── BrokerUnavailable          the Kafka cluster cannot be reached
    │   ├── StorageUnavailable         the object store answered 5xx / timed out
    │   └── ProviderUnavailable        an external provider timed out / said 429 or 5xx
    └── PermanentError                 retriable = False
        ├── ConfigurationError         a setting is missing or invalid
        ├── TopicMisconfigured         a topic is missing or has the wrong layout
        ├── InvalidKey                 an object key escapes its prefix or is malformed
        ├── InvalidUpload              an upload's fields cannot form an uploaded event
        ├── ObjectNotFound             the object store has no such key
        ├── SchemaError                an event does not match its schema
        └── PoisonEvent                an event that no retry can process

Expected outcomes of the imaging engine (an unsupported format, a truncated
file) are *values* with a reason code, not members of this tree.
"""

from __future__ import annotations

from typing import ClassVar


class DarkroomError(Exception):
    """Base of every Darkroom error.

    Args:
        message: one sentence a person can act on.
        reason_code: a stable machine-readable code (``snake_case``); defaults to
            the class's :attr:`default_reason`.

    Attributes:
        retriable: whether the same operation may succeed if tried again.
    """

    retriable: ClassVar[bool] = False
    default_reason: ClassVar[str] = "internal_error"

    def __init__(self, message: str, *, reason_code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.reason_code = reason_code or self.default_reason

    def __str__(self) -> str:
        return f"{self.reason_code}: {self.message}"


class TransientError(DarkroomError):
    """A failure that may go away on its own: retry with backoff, then dead-letter."""

    retriable = True
    default_reason = "transient_error"


class PermanentError(DarkroomError):
    """A failure that no retry can fix: record it and dead-letter at once."""

    retriable = False
    default_reason = "permanent_error"


class BrokerUnavailable(TransientError):
    """The Kafka cluster could not be reached or did not answer in time."""

    default_reason = "broker_unavailable"


class StorageUnavailable(TransientError):
    """The object store failed with a server error, a throttle or a timeout."""

    default_reason = "storage_unavailable"


class ProviderUnavailable(TransientError):
    """An external processing provider timed out or answered 429/5xx."""

    default_reason = "provider_unavailable"


class ConfigurationError(PermanentError):
    """A setting is missing or invalid; the service must not start."""

    default_reason = "configuration_error"


class TopicMisconfigured(PermanentError):
    """A topic a service needs is missing or differs from the topic registry."""

    default_reason = "topic_misconfigured"


class InvalidKey(PermanentError):
    """An object key or identifier is malformed or would escape its prefix."""

    default_reason = "invalid_key"


class InvalidUpload(PermanentError):
    """An upload's fields (file name, profile, ids) cannot form a valid ``uploaded`` event."""

    default_reason = "invalid_upload"


class ObjectNotFound(PermanentError):
    """The object store holds no object under the requested key."""

    default_reason = "object_not_found"


class SchemaError(PermanentError):
    """An event's bytes or fields do not match the schema they claim."""

    default_reason = "schema_error"


class PoisonEvent(PermanentError):
    """An event no handler can process; it goes to the dead-letter topic."""

    default_reason = "poison_event"
