"""A render failure publishes a sentence; the library's text is logged with the job id."""

from __future__ import annotations

import logging

import pytest

from darkroom_imaging.outcomes import Failure, Reason
from darkroom_variants.request import RenderRequest


async def test_a_truncated_source_fails_with_a_sentence_and_logs_the_detail(
    put_source, renderer, caplog: pytest.LogCaptureFixture
):
    [request, *_] = [RenderRequest.parse(e) for e in await put_source("bad/truncated.jpg")]
    assert isinstance(request, RenderRequest)
    outcome = await renderer.render_one(request)
    assert isinstance(outcome, Failure)
    assert outcome.reason is Reason.TRUNCATED
    assert outcome.detail is not None
    with caplog.at_level(logging.WARNING, logger="darkroom_variants.worker"):
        done = await renderer.publish(request, outcome)
    assert (done.status, done.reason_code) == ("failed", "truncated")
    assert done.reason_message == "The image file is cut short, so it cannot be decoded."
    assert "Vips" not in done.model_dump_json()
    [record] = [r for r in caplog.records if r.getMessage() == "variant failed"]
    assert record.levelno == logging.WARNING
    assert (record.job_id, record.variant, record.reason) == (  # type: ignore[attr-defined]
        request.event.job_id,
        request.event.variant,
        "truncated",
    )
    assert "premature end" in record.detail.lower()  # type: ignore[attr-defined]
