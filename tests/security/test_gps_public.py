"""No location leaves the pipeline: not in any public variant, not in the catalog API.

Where a photo was taken is personal data. ExifTool — not the decoder that wrote the
files — reads every tag of every output, in every group (EXIF, GPS IFD, XMP, IPTC, maker
notes, QuickTime/RIFF boxes):

* Every corpus image ExifTool finds a location in (GPS tags in any group, XMP/IPTC
  city, state, country, location) is rendered with the ``default`` profile (JPEG, WebP,
  AVIF and the watermarked ``display`` copy); no output carries a location tag, and no
  output holds any metadata group beyond the file structure and its ICC profile.
  Sources the engine cannot decode (HEIC without HEVC, metadata-only RAW, a truncated
  JPEG) produce no variant at all; the test says which.
* Through the running stack: the pipeline keeps the GPS position in its events (the
  ``cataloged`` event has it), but the catalog API — image, job, gallery listing and
  the gallery page — never shows it (``darkroom_catalog.views.PRIVATE_METADATA``), and
  the variants it stored on S3 carry none either. The README documents the listing's
  ``metadata`` without promising a position, so none is shown.
"""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import Any

import pytest

from darkroom_common.storage import S3Store
from darkroom_imaging.exiftool import ExifTool
from darkroom_imaging.profiles import load_profile
from darkroom_imaging.render import RenderContext, render

from .conftest import CORPUS, Stack

LOCATION = re.compile(
    r"GPS|Latitude|Longitude|^Location|^(City|State|Province-State|Country|CountryCode|"
    r"Country-PrimaryLocationName|Sub-?location)$"
)
"""A tag (ExifTool name, any group) that tells where a photo was taken."""
ALLOWED_GROUPS = {"ExifTool", "File", "Composite", "ICC_Profile", "JFIF", "QuickTime", "RIFF"}
"""ExifTool family-0 groups an output may have: file structure and its colour profile."""
DEFAULT = load_profile("default")


@pytest.fixture(scope="module")
def exiftool() -> Any:
    """ExifTool reporting every tag (duplicates too) with its family 0 and 1 groups."""
    with ExifTool(common_args=("-json", "-n", "-a", "-G0:1")) as tool:
        yield tool


def read_all(exiftool: ExifTool, paths: list[Path]) -> dict[Path, dict[str, Any]]:
    """ExifTool's tags of each file, keyed ``Group0:Group1:Name`` (one ExifTool request)."""
    out, _ = exiftool.execute("-fast", *(str(p.absolute()) for p in paths))
    return {Path(d["SourceFile"]).resolve(): d for d in json.loads(out)}


def location_tags(tags: dict[str, Any]) -> list[str]:
    """The location tags among ``tags`` (keys as :func:`read_all` gives them)."""
    return sorted(k for k in tags if LOCATION.search(k.rsplit(":", 1)[-1]))


def groups(tags: dict[str, Any]) -> set[str]:
    """The family-0 groups of ``tags``."""
    return {k.split(":", 1)[0] for k in tags if ":" in k}


@pytest.mark.slow
def test_no_location_survives_in_any_default_variant(exiftool, tmp_path):
    files = sorted(p for p in CORPUS.rglob("*") if p.is_file() and p.suffix not in (".csv", ".md"))
    sources = {p: location_tags(t) for p, t in read_all(exiftool, files).items()}
    sources = {p: tags for p, tags in sources.items() if tags}
    assert len(sources) >= 8, sources  # the corpus has GPS, IPTC and XMP locations
    outputs: dict[Path, tuple[Path, str]] = {}
    skipped: dict[str, str] = {}
    for source in sorted(sources):
        result = render(source, DEFAULT.specs, context=RenderContext(artist="Jane Doe"))
        if result.failure is not None:
            skipped[source.name] = result.failure.reason.value
            continue
        assert result.ok, (source, result.failures)
        for name, variant in result.rendered.items():
            path = tmp_path / f"{source.stem}.{name}.{variant.format}"
            path.write_bytes(variant.data)
            outputs[path.resolve()] = (source, name)
    rendered = {source for source, _ in outputs.values()}
    assert len(rendered) >= 8, skipped
    assert {name for _, name in outputs.values()} == {s.name for s in DEFAULT.specs}
    found = read_all(exiftool, list(outputs))
    assert set(found) == set(outputs)
    for path, tags in found.items():
        assert not location_tags(tags), (outputs[path], location_tags(tags))
        assert groups(tags) <= ALLOWED_GROUPS, (outputs[path], groups(tags) - ALLOWED_GROUPS)
    print(
        f"\n{len(sources)} corpus files with a location ({sum(map(len, sources.values()))} "
        f"location tags); {len(rendered)} rendered into {len(outputs)} variants "
        f"({', '.join(sorted({p.suffix[1:] for p in outputs}))}), 0 location tags, groups "
        f"{sorted(set().union(*map(groups, found.values())))}; not renderable: {skipped}"
    )


async def _download(stack: Stack, keys: list[str], folder: Path) -> list[Path]:
    paths = []
    async with S3Store(stack.storage) as store:
        for key in keys:
            path = folder / key.replace("/", "_")
            path.write_bytes(await store.get_bytes(key))
            paths.append(path)
    return paths


@pytest.mark.e2e
@pytest.mark.kafka
@pytest.mark.s3
@pytest.mark.slow
def test_the_catalog_api_and_stored_variants_show_no_location(stack, exiftool, tmp_path):
    gallery = "sec-location"  # no "gps" in any id or name of the listing
    source = CORPUS / "jpeg" / "exif_gps_nikon_coolpix_p6000.jpg"
    grant = stack.upload(source, gallery, filename="photo.jpg")  # no "gps" in the name
    end = stack.cataloged(grant["job_id"])
    assert end.status == "complete", end.reason_message
    assert end.metadata is not None
    lat, lon = end.metadata.gps_latitude, end.metadata.gps_longitude
    assert lat is not None  # the pipeline read the position
    assert lon is not None
    read = stack.auth("read")
    image = grant["image_id"]
    pages = {
        "image": stack.http.get(f"{stack.catalog}/v1/images/{image}", headers=read),
        "job": stack.http.get(f"{stack.catalog}/v1/jobs/{image}", headers=read),
        "listing": stack.http.get(f"{stack.catalog}/v1/galleries/{gallery}/images", headers=read),
        "page": stack.http.get(f"{stack.catalog}/galleries/{gallery}", headers=read),
    }
    for what, r in pages.items():
        assert r.status_code == 200, (what, r.text[:300])
        text = r.text.lower()
        assert "gps" not in text, what
        for value in (lat, lon):
            assert f"{abs(value):.4f}"[:-1] not in text, (what, value)
    metadata = pages["image"].json()["metadata"]
    assert metadata["model"] == end.metadata.model  # the rest of the EXIF summary is shown
    keys = [v.object_key for v in end.variants]
    assert len(keys) == len(DEFAULT.specs)
    found = read_all(exiftool, asyncio.run(_download(stack, keys, tmp_path)))
    for path, tags in found.items():
        assert not location_tags(tags), (path.name, location_tags(tags))
        assert groups(tags) <= ALLOWED_GROUPS, (path.name, groups(tags))
    print(
        f"\ncataloged event: GPS {lat:.5f}, {lon:.5f}; catalog API image/job/listing/page: "
        f"no GPS; {len(found)} stored variants: 0 location tags"
    )
