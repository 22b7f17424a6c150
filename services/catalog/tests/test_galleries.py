"""Gallery upserts from cataloged events (no broker)."""

from __future__ import annotations

import json

from darkroom_catalog.galleries import GalleryState, apply_cataloged, apply_image_deleted
from darkroom_catalog.jobs import JobState, apply
from darkroom_schemas import CatalogedV1, ImageDeletedV1


def terminal(events) -> CatalogedV1:
    job: JobState | None = None
    out: list[CatalogedV1] = []
    for event in events:
        job, cataloged = apply(job, event)
        out += cataloged
    return out[-1]


def test_complete_job_adds_its_image(flow):
    f = flow("img1")
    event = terminal(f.happy(("thumb", "large")))
    gallery = apply_cataloged(None, event)
    assert gallery is not None
    assert (gallery.gallery_id, gallery.image_count, list(gallery.images)) == ("g1", 1, ["img1"])
    image = gallery.images["img1"]
    assert image.job_id == "job-img1"
    assert image.filename == "IMG_0001.JPG"
    assert image.variants["large"].model_dump() == {
        "key": "variants/img1/large-spec01.webp",
        "width": 2560,
        "height": 1707,
        "format": "webp",
        "bytes": 25600,
    }
    assert image.thumbhash == "th-thumb"
    assert image.metadata == event.metadata
    assert image.completed_at == event.completed_at == gallery.updated_at


def test_replay_never_duplicates_an_image(flow):
    one = terminal(flow("img1").happy())
    two = terminal(flow("img2").happy())
    gallery = apply_cataloged(apply_cataloged(None, one), two)
    assert gallery is not None
    assert gallery.image_count == 2
    assert apply_cataloged(gallery, one) is None
    assert apply_cataloged(gallery, two) is None


def test_failed_job_leaves_the_gallery_untouched(flow):
    shown = terminal(flow("img1", job_id="job-1").happy())
    gallery = apply_cataloged(None, shown)
    rerender = flow("img1", job_id="job-2")
    failed = terminal([rerender.uploaded(), rerender.validated(), rerender.failed("thumb")])
    assert failed.status == "failed"
    assert apply_cataloged(gallery, failed) is None


def test_a_failed_job_of_an_unshown_image_is_listed_until_it_completes(flow):
    first = flow("img1")
    failed = terminal([first.uploaded(), first.validated(), first.failed("thumb")])
    gallery = apply_cataloged(None, failed)
    assert gallery is not None
    assert gallery.image_count == 0
    assert gallery.failed["img1"].reason_code == "decode_error"
    assert apply_cataloged(gallery, failed) is None
    retried = terminal(first.happy(attempt=2))
    done = apply_cataloged(gallery, retried)
    assert done is not None
    assert done.failed == {}
    assert done.image_count == 1
    assert apply_cataloged(done, failed) is None


def test_delete_removes_the_image_for_good_and_is_idempotent(flow):
    one = flow("img1")
    shown = terminal(one.happy())
    gallery = apply_cataloged(None, shown)
    deleted = ImageDeletedV1(**one.ids)
    after = apply_image_deleted(gallery, deleted)
    assert after is not None
    assert after.images == {}
    assert after.image_count == 0
    assert "img1" in after.deleted
    assert apply_image_deleted(after, deleted) is None
    assert apply_cataloged(after, shown) is None
    assert apply_image_deleted(None, deleted) is not None


def test_a_later_job_replaces_the_image_and_an_older_one_does_not(flow):
    old = terminal(flow("img1", job_id="job-1").happy(("thumb",)))
    new = terminal(flow("img1", job_id="job-2").happy(("thumb", "large")))
    gallery = apply_cataloged(apply_cataloged(None, old), new)
    assert gallery is not None
    assert gallery.images["img1"].job_id == "job-2"
    assert gallery.image_count == 1
    assert set(gallery.images["img1"].variants) == {"thumb", "large"}
    assert apply_cataloged(gallery, old) is None


def test_input_gallery_is_not_mutated(flow):
    gallery = apply_cataloged(None, terminal(flow("img1").happy()))
    assert gallery is not None
    before = gallery.to_json()
    apply_cataloged(gallery, terminal(flow("img2").happy()))
    assert gallery.to_json() == before


def test_state_round_trips_through_json(flow):
    gallery = apply_cataloged(None, terminal(flow("img1").happy()))
    assert gallery is not None
    stored = json.loads(json.dumps(gallery.to_json()))
    assert GalleryState.from_json(stored) == gallery
