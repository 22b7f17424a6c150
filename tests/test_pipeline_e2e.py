"""The whole pipeline through the real broker: four services as processes, real photos.

One pipeline (two render workers in one consumer group) handles the corpus:
every orientation, the EXIF-rich JPEGs, the developable RAW files, the
metadata-only RAW files and every bad file, each with its expected outcome.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from pathlib import Path

import httpx
import numpy as np
import pytest
import pyvips
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from darkroom_cli.tracker import JobTracker
from darkroom_dev.local.pipeline import LocalPipeline
from darkroom_imaging.probe import icc_description
from darkroom_imaging.profiles import load_profile
from darkroom_schemas import DeadLetterV1, decode

from .conftest import CORPUS, run_files, start_pipeline

pytestmark = [pytest.mark.e2e, pytest.mark.kafka, pytest.mark.slow]

DEFAULT = load_profile("default")
BOUNDS = {s.name: (s.width, s.height, s.fit) for s in DEFAULT.specs}

COMPLETE = [
    *(f"orientation/{side}_{n}.jpg" for side in ("Landscape", "Portrait") for n in range(9)),
    *(f"jpeg/{p.name}" for p in sorted((CORPUS / "jpeg").glob("*.jpg"))),
    "raw/cr2_canon_img5952.cr2",
    "raw/dng_lg-h815_skia_sample_1mp.dng",
    "raw/kdc_kodak_dc50.kdc",
    # Broken EXIF never fails a job: these are valid images.
    "bad/exif_gps_typeerror.jpg",
    "bad/exif_invalid.jpg",
    "bad/looks_like_svg.webp",
]
FAILED = {
    "raw/metadata_only/exifpy_nikon_z9_dng17.dng": "raw_unsupported",
    "raw/metadata_only/exifpy_sony_a7iii.arw": "truncated",
    "raw/metadata_only/exiftool_CanonRaw.cr2": "raw_no_image_data",
    "raw/metadata_only/exiftool_CanonRaw.cr3": "raw_no_image_data",
    "raw/metadata_only/exiftool_DNG.dng": "raw_no_image_data",
    "raw/metadata_only/exiftool_FujiFilm.raf": "raw_no_image_data",
    "raw/metadata_only/exiftool_Nikon.nef": "raw_no_image_data",
    "raw/metadata_only/exiftool_Panasonic.rw2": "raw_no_image_data",
    "bad/bomb_17000x17000.avif": "too_many_pixels",
    "bad/bomb_32000x32000.dng": "too_many_pixels",
    "bad/bomb_decompression_bomb.gif": "too_many_pixels",
    "bad/corrupt_header.jpg": "truncated",
    "bad/corrupt_png_broken_data_stream.png": "decode_error",
    "bad/exif_rich_truncated_ultrahdr_pixel6.jpg": "truncated",
    "bad/fuzz_crash_pillow_0c7e0e8e.tif": "truncated",
    "bad/fuzz_crash_pillow_1152ec2d.tif": "truncated",
    "bad/fuzzed_jpeg_truncated_read.jpg": "decode_error",
    "bad/fuzzed_jpeg_unidentifiable.jpg": "decode_error",
    "bad/heic_with_jpg_extension.jpg": "extension_mismatch",
    "bad/html_renamed.jpg": "unsupported_format",
    "bad/jpeg_with_nef_extension.nef": "extension_mismatch",
    "bad/svg_renamed.jpg": "unsupported_format",
    "bad/tiny_progressive_193x31423.jpg": "decode_error",
    "bad/truncated.dng": "truncated",
    "bad/truncated.jpg": "truncated",
    "bad/truncated.png": "truncated",
    "bad/zero_bytes.jpg": "empty_file",
}


@pytest.fixture(scope="module")
def two_workers(kafka_bootstrap, tmp_path_factory):
    """The pipeline with a second render worker in the variants consumer group."""
    p = start_pipeline(kafka_bootstrap, tmp_path_factory.mktemp("e2e"))
    p.services.start("variants")
    try:
        yield p
    finally:
        p.stop()


@pytest.fixture(scope="module")
def corpus_run(two_workers: LocalPipeline):
    paths = [CORPUS / rel for rel in [*COMPLETE, *FAILED]]
    return run_files(two_workers, paths, gallery="corpus", timeout_s=420)


def test_every_bad_and_metadata_only_file_has_its_reason_code(corpus_run, two_workers):
    got = {rel: corpus_run[Path(rel).name][1] for rel in FAILED}
    wrong = {
        rel: (e.status, e.reason)
        for rel, e in got.items()
        if (e.status, e.reason) != ("failed", FAILED[rel])
    }
    assert not wrong
    for rel, end in got.items():
        upload = corpus_run[Path(rel).name][0]
        assert end.cataloged is not None, rel
        assert end.cataloged.reason_message, rel
        assert end.cataloged.variants == []
        # Nothing reaches the gallery: no variant object was written for it.
        folder = two_workers.path(f"variants/{upload.gallery_id}/{upload.image_id}/x").parent
        assert not folder.exists(), rel


def test_good_files_complete_with_every_variant_of_the_profile(corpus_run):
    wrong = {
        rel: (e.status, e.reason)
        for rel in COMPLETE
        if (e := corpus_run[Path(rel).name][1]).status != "complete"
    }
    assert not wrong
    for rel in COMPLETE:
        cataloged = corpus_run[Path(rel).name][1].cataloged
        assert cataloged is not None
        assert sorted(v.name for v in cataloged.variants) == sorted(BOUNDS), rel
        for v in cataloged.variants:
            w, h, fit = BOUNDS[v.name]
            assert v.width <= w, (rel, v)
            assert v.height <= h, (rel, v)
            if fit == "cover" and v.name in ("thumb", "icon"):
                assert (v.width, v.height) == (w, h) or min(v.width, v.height) < min(w, h), (rel, v)
        assert cataloged.thumbhash, rel
        assert cataloged.dominant_colour, rel


def _pixels(pipeline: LocalPipeline, key: str) -> np.ndarray:
    img = pyvips.Image.new_from_file(str(pipeline.path(key)))
    return np.ndarray(
        buffer=img.write_to_memory(), dtype=np.uint8, shape=(img.height, img.width, img.bands)
    ).astype(float)


def _key(run, name: str, variant: str) -> str:
    return next(v.object_key for v in run[name][1].cataloged.variants if v.name == variant)


def test_orientation_is_applied_for_all_eight_values(corpus_run, two_workers):
    for side in ("Landscape", "Portrait"):
        reference = _pixels(two_workers, _key(corpus_run, f"{side}_1.jpg", "medium"))
        for n in (0, *range(2, 9)):
            other = _pixels(two_workers, _key(corpus_run, f"{side}_{n}.jpg", "medium"))
            assert other.shape == reference.shape, (side, n)
            assert np.abs(other - reference).mean() < 10, (side, n)


def test_outputs_are_srgb_and_carry_no_gps(corpus_run, two_workers):
    keeps_copyright = {s.name for s in DEFAULT.specs if s.keep_copyright}
    for name in ("exif_gps_tahoe.jpg", "exif_lens_gps_iphone6.jpg", "cr2_canon_img5952.cr2"):
        for v in corpus_run[name][1].cataloged.variants:
            img = pyvips.Image.new_from_file(str(two_workers.path(v.object_key)))
            fields = img.get_fields()
            assert not [f for f in fields if "gps" in f.lower()], (name, v.name)
            assert "exif-data" not in fields or v.name in keeps_copyright, (name, v.name)
            assert "sRGB" in (icc_description(img.get("icc-profile-data")) or ""), (name, v.name)


def test_raw_jobs_keep_the_raw_exif(corpus_run):
    meta = corpus_run["cr2_canon_img5952.cr2"][1].cataloged.metadata
    assert meta is not None
    assert meta.make == "Canon"
    tahoe = corpus_run["exif_gps_tahoe.jpg"][1].cataloged.metadata
    assert tahoe is not None
    assert tahoe.gps_latitude is not None


async def _variant_done_events(bootstrap: str, topic: str) -> list:
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", group_id=None
    )
    await consumer.start()
    out = []
    try:
        while True:
            batch = await consumer.getmany(timeout_ms=3000)
            if not batch:
                return out
            for records in batch.values():
                out += [decode(r.value) for r in records]
    finally:
        await consumer.stop()


def test_two_render_workers_split_the_load_and_make_each_variant_once(corpus_run, two_workers):
    events = asyncio.run(
        _variant_done_events(two_workers.bootstrap, f"{two_workers.prefix}variant-done")
    )
    done = [e for e in events if e.status == "done"]
    workers = Counter(e.provenance["worker"] for e in done)
    assert len(workers) == 2, workers
    keys = Counter(e.object_key for e in done)
    expected = len(COMPLETE) * len(BOUNDS)
    assert len(keys) == expected
    for key in keys:
        assert two_workers.path(key).is_file(), key


def test_a_poison_event_is_dead_lettered_and_the_next_event_is_processed(two_workers):
    async def scenario():
        tracker = JobTracker(two_workers.bootstrap, topic_prefix=two_workers.prefix)
        await tracker.start()
        producer = AIOKafkaProducer(bootstrap_servers=two_workers.bootstrap, acks="all")
        await producer.start()
        try:
            await producer.send_and_wait(
                f"{two_workers.prefix}uploaded", b"\x00\x00\x00\x00\x01not avro", key=b"poison"
            )
        finally:
            await producer.stop()
        [upload] = await two_workers.upload(
            [CORPUS / "orientation/Portrait_5.jpg"], gallery="poison-test"
        )
        ends = await tracker.wait([upload.job_id], timeout_s=120, should_abort=two_workers.died)
        dlq = AIOKafkaConsumer(
            f"{two_workers.prefix}ingest.dlq",
            bootstrap_servers=two_workers.bootstrap,
            auto_offset_reset="earliest",
            group_id=None,
        )
        await dlq.start()
        try:
            batch = await dlq.getmany(timeout_ms=10_000)
        finally:
            await dlq.stop()
            await tracker.stop()
        letters = [decode(r.value) for rs in batch.values() for r in rs]
        return ends[upload.job_id], letters

    end, letters = asyncio.run(scenario())
    assert end.status == "complete"
    poison = [
        d
        for d in letters
        if isinstance(d, DeadLetterV1) and d.payload == b"\x00\x00\x00\x00\x01not avro"
    ]
    assert len(poison) == 1
    assert poison[0].reason_code == "schema_error"
    assert poison[0].stage == "ingest"
    # The dead letter moved its metric on the ingest worker that sent it.
    ingest = next(p for p in two_workers.services.processes if p.name == "ingest")
    scraped = httpx.get(f"http://127.0.0.1:{ingest.web_port}/metrics", timeout=10).text
    assert 'darkroom_dead_letters_total{reason="schema_error",service="ingest"} 1.0' in scraped
    assert json.dumps(poison[0].error_message)


def test_the_same_bytes_twice_in_one_gallery_are_not_processed_twice(corpus_run, two_workers):
    first = corpus_run["Landscape_3.jpg"][0]

    async def again():
        tracker = JobTracker(two_workers.bootstrap, topic_prefix=two_workers.prefix)
        await tracker.start()
        try:
            [upload] = await two_workers.upload(
                [CORPUS / "orientation/Landscape_3.jpg"], gallery="corpus"
            )
            return await tracker.wait([upload.job_id], timeout_s=120, should_abort=two_workers.died)
        finally:
            await tracker.stop()

    [end] = asyncio.run(again()).values()
    assert end.status == "failed"
    assert end.reason == "duplicate"
    assert end.cataloged.duplicate_of == first.image_id
