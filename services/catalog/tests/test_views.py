"""The catalog's public views of an image: what they show and what they never show."""

from __future__ import annotations

from darkroom_catalog.views import PRIVATE_METADATA, public_metadata
from darkroom_schemas import ImageMetadata


def test_public_metadata_keeps_the_exif_summary_but_never_the_position():
    metadata = ImageMetadata(
        make="Canon", model="EOS 5D Mark III", iso=400,
        gps_latitude=43.46745, gps_longitude=11.88513, gps_altitude=301.0,
    )  # fmt: skip
    shown = public_metadata(metadata)
    assert shown is not None
    assert (shown["make"], shown["model"], shown["iso"]) == ("Canon", "EOS 5D Mark III", 400)
    assert PRIVATE_METADATA.isdisjoint(shown)
    assert set(ImageMetadata.model_fields) - set(shown) == PRIVATE_METADATA
    assert public_metadata(None) is None
