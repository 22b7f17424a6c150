"""Retries: transient errors retried a bounded number of times, permanent ones never."""

from __future__ import annotations

import pytest

from darkroom_common.errors import (
    DarkroomError,
    InvalidKey,
    PermanentError,
    StorageUnavailable,
    TransientError,
)
from darkroom_common.retry import is_retriable, retry_async


class Flaky:
    def __init__(self, failures: int, exc: Exception) -> None:
        self.failures, self.exc, self.calls = failures, exc, 0

    async def __call__(self) -> str:
        self.calls += 1
        if self.calls <= self.failures:
            raise self.exc
        return "ok"


async def test_transient_error_is_retried_until_success():
    fn = Flaky(2, StorageUnavailable("s3 said 503"))
    seen = []
    assert (
        await retry_async(
            fn, max_retries=3, base_delay_s=0.001, on_retry=lambda e, n: seen.append(n)
        )
        == "ok"
    )
    assert fn.calls == 3
    assert seen == [1, 2]


async def test_retries_are_bounded_and_the_last_error_is_raised():
    fn = Flaky(10, StorageUnavailable("still down"))
    with pytest.raises(StorageUnavailable, match="still down"):
        await retry_async(fn, max_retries=2, base_delay_s=0.001)
    assert fn.calls == 3


async def test_permanent_error_is_not_retried():
    fn = Flaky(1, InvalidKey("../etc/passwd escapes its prefix"))
    with pytest.raises(InvalidKey):
        await retry_async(fn, max_retries=5, base_delay_s=0.001)
    assert fn.calls == 1


def test_retriable_classification():
    assert is_retriable(TransientError("x"))
    assert is_retriable(ConnectionResetError())
    assert is_retriable(TimeoutError())
    assert not is_retriable(PermanentError("x"))
    assert not is_retriable(ValueError("x"))
    err = DarkroomError("boom")
    assert str(err) == "internal_error: boom"
    assert InvalidKey("k").reason_code == "invalid_key"
