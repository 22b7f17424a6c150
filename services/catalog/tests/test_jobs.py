"""The job state machine, transition by transition (no broker)."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from darkroom_catalog.jobs import (
    CATALOGED_NAMESPACE,
    RECENT_EVENT_IDS,
    JobState,
    apply,
    cataloged_event,
)
from darkroom_schemas import CatalogedV1, ImageMetadata


def run(events: list[Any], job: JobState | None = None) -> tuple[JobState, list[CatalogedV1]]:
    """Apply ``events`` in order; return the last state and every cataloged event."""
    out: list[CatalogedV1] = []
    for event in events:
        job, cataloged = apply(job, event)
        out += cataloged
    assert job is not None
    return job, out


def error(job: JobState) -> tuple[str, str | None]:
    """The job's error as ``(code, message)``; fails the test if it has none."""
    assert job.error is not None
    return job.error.code, job.error.message


def test_uploaded_creates_a_queued_job(flow):
    f = flow("img1")
    up = f.uploaded(filename="DSC_0042.NEF")
    job, out = apply(None, up)
    assert out == []
    assert (job.status, job.attempts, job.filename) == ("queued", 1, "DSC_0042.NEF")
    assert job.original_key == up.object_key
    assert (job.job_id, job.gallery_id, job.image_id) == ("job-img1", "g1", "img1")
    assert job.created_at == job.updated_at == up.occurred_at
    assert job.recent_event_ids == [str(up.event_id)]
    assert job.provider_job_id is None


@pytest.mark.parametrize(
    "second",
    [
        lambda f: f.validated(),
        lambda f: f.requested("thumb", 2),
        lambda f: f.done("thumb"),
    ],
    ids=["validated-accepted", "variant-requested", "variant-done"],
)
def test_queued_moves_to_processing(flow, second):
    f = flow("img1")
    job, out = run([f.uploaded(), second(f)])
    assert job.status == "processing"
    assert out == []


def test_validated_records_probe_metadata_and_source(flow):
    f = flow("img1")
    v = f.validated()
    job, _ = run([f.uploaded(), v])
    assert job.accepted
    assert not job.is_raw
    assert job.metadata == v.metadata
    assert job.probe == v.probe
    assert job.source_key == v.object_key


def test_complete_only_when_every_variant_is_done(flow):
    f = flow("img1")
    names = ("thumb", "medium", "large")
    events = [f.uploaded(), f.validated(), *(f.requested(n, 3) for n in names)]
    events += [f.done("large"), f.done("medium")]
    job, out = run(events)
    assert job.status == "processing"
    assert out == []
    last = f.done("thumb")
    job, out = apply(job, last)
    assert job.status == "complete"
    assert job.completed_at == last.occurred_at
    [event] = out
    assert event.status == "complete"
    assert event.attempts == 1
    assert event.event_id == uuid.uuid5(CATALOGED_NAMESPACE, "job-img1:1:complete")
    assert event.occurred_at == event.completed_at == last.occurred_at
    assert [v.name for v in event.variants] == ["large", "medium", "thumb"]
    thumb = event.variants[2]
    assert (thumb.object_key, thumb.width, thumb.height, thumb.format) == (
        "variants/img1/thumb-spec01.webp",
        320,
        213,
        "webp",
    )
    assert (event.thumbhash, event.dominant_colour) == ("th-thumb", job.dominant_colour)
    assert event.filename == "IMG_0001.JPG"
    assert event.source_key == f.requested("x", 1).source_key
    assert event.metadata == ImageMetadata(make="Canon", model="EOS R5", iso=200, f_number=2.8)
    assert (event.job_id, event.gallery_id, event.image_id) == ("job-img1", "g1", "img1")
    assert event.correlation_id == "corr-img1"


def test_placeholder_comes_from_the_smallest_variant_without_a_thumb(flow):
    f = flow("img1")
    job, [event] = run(f.happy(("large", "small")))
    assert event.thumbhash == "th-small"
    assert job.thumbhash == "th-small"


def test_no_completion_before_the_variant_count_is_known(flow):
    f = flow("img1")
    job, out = run([f.uploaded(), f.validated(), f.done("thumb")])
    assert job.status == "processing"
    assert job.variant_count is None
    assert out == []
    job, out = run([f.requested("thumb", 1)], job)
    assert job.status == "complete"
    assert len(out) == 1


def test_completion_waits_for_the_accepted_validated_event(flow):
    f = flow("img1")
    job, out = run([f.uploaded(), f.requested("thumb", 1), f.done("thumb")])
    assert job.status == "processing"
    assert out == []
    job, out = run([f.validated()], job)
    assert job.status == "complete"
    assert out[0].metadata is not None


def test_a_done_variant_is_not_downgraded_by_its_late_request(flow):
    f = flow("img1")
    job, out = run([f.uploaded(), f.validated(), f.done("thumb"), f.requested("thumb", 1)])
    assert job.variants["thumb"].status == "done"
    assert job.status == "complete"
    assert len(out) == 1


def test_rejected_upload_fails_the_job(flow):
    f = flow("img1")
    rejected = f.validated(
        accepted=False,
        reason_code="unsupported_format",
        reason_message="PSD is not supported",
        probe=None,
        metadata=None,
    )
    job, [event] = run([f.uploaded(), rejected])
    assert job.status == "failed"
    assert job.completed_at == rejected.occurred_at
    assert error(job) == ("unsupported_format", "PSD is not supported")
    assert (event.status, event.reason_code) == ("failed", "unsupported_format")
    assert event.event_id == uuid.uuid5(CATALOGED_NAMESPACE, "job-img1:1:failed")
    assert event.variants == []


def test_rejected_duplicate_keeps_duplicate_of(flow):
    f = flow("img2")
    job, [event] = run([f.uploaded(), f.validated(accepted=False, duplicate_of="img1")])
    assert job.duplicate_of == event.duplicate_of == "img1"
    assert error(job)[0] == "rejected"


def test_rejection_while_processing_fails_the_job(flow):
    f = flow("img1")
    job, out = run([f.uploaded(), f.requested("thumb", 2), f.validated(accepted=False)])
    assert job.status == "failed"
    assert len(out) == 1


def test_failed_variant_fails_the_job_with_its_reason(flow):
    f = flow("img1")
    events = [f.uploaded(), f.validated(), f.requested("thumb", 2), f.requested("large", 2)]
    events += [f.done("thumb"), f.failed("large", reason="decode_error")]
    job, [event] = run(events)
    assert job.status == "failed"
    assert error(job) == ("decode_error", "large could not be rendered")
    assert job.variants["large"].status == "failed"
    assert event.reason_code == "decode_error"
    assert [v.name for v in event.variants] == ["thumb"]


def test_failed_variant_without_a_reason_gets_a_default(flow):
    f = flow("img1")
    failed = f.failed("thumb").model_copy(update={"reason_code": None, "reason_message": None})
    job, _ = run([f.uploaded(), failed])
    assert error(job)[0] == "variant_failed"
    assert "thumb" in (error(job)[1] or "")


@pytest.mark.parametrize(
    "missing", [{"object_key": None}, {"format": None}, {"width": None}, {"bytes": None}]
)
def test_a_done_variant_without_its_output_counts_as_failed(flow, missing):
    f = flow("img1")
    job, [event] = run(
        [f.uploaded(), f.validated(), f.requested("thumb", 1), f.done("thumb", **missing)]
    )
    assert job.status == "failed"
    assert error(job)[0] == "variant_incomplete"
    assert event.variants == []


def test_duplicate_event_id_is_ignored(flow):
    f = flow("img1")
    up, val = f.uploaded(), f.validated()
    job, _ = run([up, val])
    same, out = apply(job, val)
    assert same is job
    assert out == []
    same, out = apply(job, up)
    assert same is job
    assert out == []


def test_duplicate_of_the_completing_event_catalogs_once(flow):
    events = flow("img1").happy()
    job, out = run([*events, events[-1], events[-2]])
    assert job.status == "complete"
    assert len(out) == 1


def test_stale_attempt_is_ignored(flow):
    f = flow("img1")
    job, _ = run([f.uploaded(attempt=2), f.validated(attempt=2)])
    same, out = apply(job, f.failed("thumb", attempt=1))
    assert same is job
    assert out == []


@pytest.mark.parametrize(
    "late",
    [
        lambda f: f.failed("thumb"),
        lambda f: f.done("thumb"),
        lambda f: f.validated(accepted=False, reason_code="corrupt"),
        lambda f: f.requested("extra", 5),
        lambda f: f.uploaded(),
        lambda f: f.validated(attempt=2),
    ],
    ids=["variant-failed", "variant-done", "rejected", "requested", "uploaded", "next-attempt"],
)
def test_complete_never_regresses(flow, late):
    f = flow("img1")
    job, _ = run(f.happy())
    same, out = apply(job, late(f))
    assert same is job
    assert out == []


@pytest.mark.parametrize(
    "late",
    [
        lambda f: f.done("thumb"),
        lambda f: f.requested("thumb", 1),
        lambda f: f.validated(),
        lambda f: f.uploaded(),
    ],
    ids=["done", "requested", "accepted", "uploaded-same-attempt"],
)
def test_failed_never_regresses_without_a_retry(flow, late):
    f = flow("img1")
    job, _ = run([f.uploaded(), f.validated(accepted=False, reason_code="corrupt")])
    same, out = apply(job, late(f))
    assert same is job
    assert out == []


def test_retry_after_failure_requeues_and_resets_variants(flow):
    f = flow("img1")
    first = [f.uploaded(), f.validated(), f.requested("thumb", 2), f.requested("large", 2)]
    first += [f.done("thumb"), f.failed("large")]
    job, [failed] = run(first)
    retry = f.uploaded(attempt=2)
    job, out = apply(job, retry)
    assert out == []
    assert (job.status, job.attempts, job.error, job.completed_at) == ("queued", 2, None, None)
    assert job.variants == {}
    assert job.variant_count is None
    assert not job.accepted
    job, [done] = run(f.happy(("thumb", "large"), attempt=2)[1:], job)
    assert (failed.status, failed.attempts) == ("failed", 1)
    assert (done.status, done.attempts) == ("complete", 2)
    assert done.event_id != failed.event_id
    assert job.created_at < retry.occurred_at
    # Attempt 1 events arriving late are stale now.
    same, out = apply(job, f.failed("large", attempt=1))
    assert same is job
    assert out == []


@pytest.mark.parametrize(
    ("first", "status"),
    [
        (lambda f: f.validated(attempt=2), "processing"),
        (lambda f: f.requested("thumb", 1, attempt=2), "processing"),
        (lambda f: f.done("thumb", attempt=2), "processing"),
        (lambda f: f.failed("thumb", attempt=2), "failed"),
    ],
    ids=["validated", "requested", "done", "variant-failed"],
)
def test_any_event_of_a_later_attempt_retries_a_failed_job(flow, first, status):
    f = flow("img1")
    job, _ = run([f.uploaded(), f.validated(accepted=False, reason_code="corrupt")])
    job, out = apply(job, first(f))
    assert (job.status, job.attempts) == (status, 2)
    assert [(e.status, e.attempts) for e in out] == ([("failed", 2)] if status == "failed" else [])
    assert job.error is None or job.error.code == "decode_error"


def test_a_retry_consumed_out_of_order_completes(flow):
    f = flow("img1")
    job, _ = run([f.uploaded(), f.validated(), f.requested("thumb", 1), f.failed("thumb")])
    retry = f.happy(("thumb",), attempt=2)
    job, [event] = run([*reversed(retry)], job)
    assert (job.status, event.status, event.attempts) == ("complete", "complete", 2)
    assert job.filename == "IMG_0001.JPG"


def test_replay_of_a_retried_job_changes_nothing(flow):
    f = flow("img1")
    events = [f.uploaded(), f.validated(), f.requested("thumb", 1), f.failed("thumb")]
    events += f.happy(("thumb",), attempt=2)
    job, out = run(events)
    assert [(e.status, e.attempts) for e in out] == [("failed", 1), ("complete", 2)]
    replayed, again = run(events, job)
    assert again == []
    assert replayed == job


def test_higher_attempt_restarts_a_job_in_flight(flow):
    f = flow("img1")
    job, _ = run([f.uploaded(), f.validated(), f.requested("thumb", 2), f.done("thumb")])
    job, out = apply(job, f.done("thumb", attempt=2))
    assert (job.status, job.attempts, list(job.variants)) == ("processing", 2, ["thumb"])
    assert job.variants["thumb"].attempt == 2
    assert not job.accepted
    assert out == []
    job, [event] = run(
        [f.validated(attempt=2), f.requested("large", 2, attempt=2), f.done("large", attempt=2)],
        job,
    )
    assert (event.status, event.attempts) == ("complete", 2)


def test_unknown_job_is_created_from_a_later_event(flow):
    f = flow("img1")
    val = f.validated()
    job, out = apply(None, val)
    assert (job.status, job.filename, job.original_key) == (
        "processing",
        "IMG_0001.JPG",
        val.object_key,
    )
    assert job.created_at == val.occurred_at
    assert out == []
    up = f.uploaded(filename="holiday.jpg")
    up = up.model_copy(update={"occurred_at": val.occurred_at.replace(year=2024)})
    job, out = apply(job, up)
    assert (job.status, job.filename, job.created_at) == (
        "processing",
        "holiday.jpg",
        up.occurred_at,
    )
    assert out == []


def test_unknown_job_failed_by_its_first_event_is_cataloged(flow):
    f = flow("img1")
    job, [event] = apply(None, f.failed("thumb", attempt=3))
    assert (job.status, job.attempts) == ("failed", 3)
    assert (event.status, event.attempts, event.filename) == ("failed", 3, None)


def test_unknown_job_can_complete_from_the_events_it_sees(flow):
    f = flow("img1")
    job, [event] = run([f.requested("thumb", 1), f.validated(), f.done("thumb")])
    assert job.status == "complete"
    assert event.filename == "IMG_0001.JPG"


def test_raw_job_keeps_the_original_and_renders_the_master(flow):
    f = flow("img1")
    raw_key, master = "originals/g1/img1/IMG_1.CR3", "masters/g1/img1/IMG_1.jpg"
    original = f.validated(is_raw=True, object_key=raw_key)
    developed = f.validated(
        object_key=master, derived_from=raw_key, metadata=ImageMetadata(software="dcraw")
    )
    job, _ = run([f.uploaded(filename="IMG_1.CR3"), original])
    assert job.is_raw
    assert job.source_key is None
    job, [event] = run(
        [developed, f.requested("thumb", 1, source_key=master), f.done("thumb")], job
    )
    assert (job.is_raw, job.derived_from, job.original_key) == (True, raw_key, raw_key)
    assert job.source_key == event.source_key == master
    assert job.metadata == original.metadata


def test_raw_master_alone_sets_original_and_source(flow):
    f = flow("img1")
    raw_key, master = "originals/g1/img1/IMG_1.CR3", "masters/g1/img1/IMG_1.jpg"
    job, _ = apply(None, f.validated(object_key=master, derived_from=raw_key))
    assert (job.is_raw, job.original_key, job.source_key) == (True, raw_key, master)
    assert job.metadata is not None


def test_a_later_job_of_the_same_image_replaces_a_finished_one(flow):
    old = flow("img1", job_id="job-1")
    job, _ = run(old.happy())
    new = flow("img1", job_id="job-2")
    first = new.uploaded()
    job, out = apply(job, first)
    assert (job.job_id, job.status, job.superseded_job_ids) == ("job-2", "queued", ["job-1"])
    assert job.variants == {}
    assert out == []
    # The replaced job's events, replayed or late, are ignored.
    for event in old.happy():
        same, out = apply(job, event)
        assert same is job
        assert out == []
    job, [event] = run([new.validated(), new.requested("thumb", 1), new.failed("thumb")], job)
    assert (event.job_id, event.status) == ("job-2", "failed")


def test_an_older_job_of_the_same_image_is_ignored(flow):
    older = flow("img1", job_id="job-0")
    stale = older.uploaded()
    job, _ = run(flow("img1", job_id="job-1").happy())
    same, out = apply(job, stale)
    assert same is job
    assert out == []


def test_recent_event_ids_are_bounded(flow):
    f = flow("img1")
    events = [f.uploaded(), f.validated()]
    events += [f.requested(f"v{i}", 100) for i in range(RECENT_EVENT_IDS + 10)]
    job, _ = run(events)
    assert len(job.recent_event_ids) == RECENT_EVENT_IDS
    assert job.recent_event_ids[-1] == str(events[-1].event_id)


def test_state_round_trips_through_json(flow):
    job, _ = run(flow("img1").happy())
    stored = json.loads(json.dumps(job.to_json()))
    assert JobState.from_json(stored) == job
    assert stored["metadata"]["model"] == "EOS R5"
    assert stored["variants"]["thumb"]["status"] == "done"


def test_apply_refuses_other_events(flow):
    job, [event] = run(flow("img1").happy())
    with pytest.raises(TypeError, match="CatalogedV1 is not a job event"):
        apply(job, event)  # type: ignore[arg-type]


def test_cataloged_event_needs_a_terminal_job(flow):
    job, _ = apply(None, flow("img1").uploaded())
    with pytest.raises(ValueError, match="queued"):
        cataloged_event(job)


def test_delete_marks_the_job_and_freezes_it(flow):
    from darkroom_catalog.jobs import apply_deleted
    from darkroom_schemas import ImageDeletedV1

    f = flow("img-del")
    job = None
    for e in f.happy()[:3]:
        job, _ = apply(job, e)
    assert job is not None
    deleted = apply_deleted(job, ImageDeletedV1(**f.ids))
    assert deleted is not None
    assert deleted.deleted_at is not None
    assert apply_deleted(deleted, ImageDeletedV1(**f.ids)) is None
    after, out = apply(deleted, f.done("thumb"))
    assert after is deleted
    assert out == []
    tombstone = apply_deleted(None, ImageDeletedV1(**flow("img-never").ids))
    assert tombstone is not None
    assert tombstone.deleted_at is not None


def test_uploaded_and_validated_fill_what_a_retry_and_the_api_need(flow):
    f = flow("img-p")
    job, _ = apply(None, f.uploaded())
    job, _ = apply(job, f.validated(provider_job_id="imagen-42"))
    assert (job.size_bytes, job.content_type, job.provider_job_id) == (
        4_000_000,
        "image/jpeg",
        "imagen-42",
    )


def test_a_late_uploaded_fills_a_terminal_job_without_moving_it(flow):
    f = flow("img-late")
    job, out = apply(None, f.validated(accepted=False, reason_code="truncated"))
    assert job.status == "failed"
    assert len(out) == 1
    filled, out = apply(job, f.uploaded())
    assert (filled.status, filled.size_bytes, filled.filename) == (
        "failed",
        4_000_000,
        "IMG_0001.JPG",
    )
    assert out == []
    again, _ = apply(filled, f.uploaded())
    assert again is filled
