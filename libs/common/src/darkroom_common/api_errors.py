"""The one error shape of both HTTP APIs (the upload API and the catalog API).

Every refusal is a JSON body ``{"reason": <stable snake_case code>, "message": <one
sentence a person can act on>}`` with an HTTP status, and for some statuses a header:

====  ======================================================================
401   ``WWW-Authenticate: Bearer realm="darkroom"``
429   ``Retry-After`` (seconds) when the API knows when to come back
503   ``Retry-After`` (seconds): the refusal is temporary
====  ======================================================================

:class:`ApiError` carries one; :func:`api_error_of` maps the error tree of
:mod:`darkroom_common.errors` onto it (authentication 401/403, a missing object 404,
a retriable error 503, anything else 500 with its reason code), so neither API
writes its own mapping. :class:`ErrorBody` is the shape for OpenAPI documents.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from darkroom_common.auth import Forbidden, Unauthenticated
from darkroom_common.errors import DarkroomError, ObjectNotFound

RETRY_AFTER_S = 1
"""The ``Retry-After`` of a temporary refusal when nothing better is known (seconds)."""


class ErrorBody(BaseModel):
    """Every error response: a stable ``reason`` code and a ``message`` a person can act on."""

    reason: str
    message: str


class ApiError(Exception):
    """A refusal: HTTP ``status``, ``reason`` code, one-sentence ``message``, extra ``headers``.

    A 503 without a ``Retry-After`` gets :data:`RETRY_AFTER_S`.
    """

    def __init__(
        self, status: int, reason: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason
        self.message = message
        self.headers = dict(headers or {})
        if status == 503:
            self.headers.setdefault("Retry-After", str(RETRY_AFTER_S))

    def body(self) -> dict[str, Any]:
        """The JSON body: ``{"reason": …, "message": …}``."""
        return {"reason": self.reason, "message": self.message}


def api_error_of(exc: DarkroomError) -> ApiError:
    """Map an error of the Darkroom tree onto the API's answer.

    ``Unauthenticated`` → 401 (with ``WWW-Authenticate``), ``Forbidden`` → 403,
    ``ObjectNotFound`` → 404 ``object_not_found``, a retriable error → 503 with its
    reason code, anything else → 500 with its reason code.
    """
    if isinstance(exc, Unauthenticated):
        return ApiError(
            401, exc.reason_code, exc.message, {"WWW-Authenticate": 'Bearer realm="darkroom"'}
        )
    if isinstance(exc, Forbidden):
        return ApiError(403, exc.reason_code, exc.message)
    if isinstance(exc, ObjectNotFound):
        return ApiError(404, "object_not_found", exc.message)
    return ApiError(503 if exc.retriable else 500, exc.reason_code, exc.message)
