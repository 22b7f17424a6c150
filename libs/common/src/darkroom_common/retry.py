"""Bounded retries with exponential backoff and jitter, from tenacity.

Only errors that say they are retriable (:attr:`DarkroomError.retriable`, or a
connection/timeout error from the standard library) are retried; everything
else is raised at once so the caller can dead-letter it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential_jitter,
)

from darkroom_common.errors import DarkroomError

T = TypeVar("T")


def is_retriable(exc: BaseException) -> bool:
    """Return whether ``exc`` may succeed if tried again."""
    if isinstance(exc, DarkroomError):
        return exc.retriable
    return isinstance(exc, ConnectionError | TimeoutError)


async def retry_async(
    fn: Callable[[], Awaitable[T]],
    *,
    max_retries: int = 3,
    base_delay_s: float = 0.2,
    max_delay_s: float = 5.0,
    on_retry: Callable[[BaseException, int], None] | None = None,
) -> T:
    """Await ``fn()``; on a retriable error try again up to ``max_retries`` more times.

    Waits grow exponentially from ``base_delay_s`` with jitter, capped at
    ``max_delay_s``. ``on_retry(error, attempt)`` is called before each retry
    (for metrics and logs).

    Raises:
        The last error, unchanged, once retries are exhausted or the error is
        not retriable.
    """

    def before_sleep(state: RetryCallState) -> None:
        if on_retry is not None and state.outcome is not None:
            exc = state.outcome.exception()
            if exc is not None:
                on_retry(exc, state.attempt_number)

    retrying = AsyncRetrying(
        stop=stop_after_attempt(max_retries + 1),
        wait=wait_exponential_jitter(multiplier=base_delay_s, max=max_delay_s, jitter=base_delay_s),
        retry=retry_if_exception(is_retriable),
        before_sleep=before_sleep,
        reraise=True,
    )
    async for attempt in retrying:
        with attempt:
            return await fn()
    raise AssertionError("unreachable: tenacity reraises the last error")
