"""One RAW truth: the probe (ingest) and ``develop`` (raw-provider) give a file one reason.

A generated table: every RAW of the corpus (``raw/*``, ``raw/metadata_only/*``) cut at
8 KB, 25 %, 50 % and 90 % of its length into ``tmp_path``, and each as it is. For every
file the probe's verdict and ``develop``'s must name the same reason (both accept, or both
refuse with one code), and a file cut short must be ``truncated`` — not ``raw_unsupported``
("your camera is not supported") nor ``raw_no_image_data`` — unless the original already
holds no image data (the stripped Panasonic RW2 keeps its ``raw_no_image_data``).
``develop`` runs with ``policy="embedded-preview"``; only files the probe accepts would
start a LibRaw child, and no cut file is accepted.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from darkroom_imaging.outcomes import Failure, Reason
from darkroom_imaging.probe import Probe, probe
from darkroom_imaging.raw import Developed, develop

CORPUS = Path(
    os.environ.get("DARKROOM_CORPUS") or Path(__file__).resolve().parents[4] / "shared" / "corpus"
)
RAWS = sorted(
    p.relative_to(CORPUS).as_posix()
    for p in [*(CORPUS / "raw").glob("*.*"), *(CORPUS / "raw/metadata_only").glob("*.*")]
)
CUTS = {"8KB": lambda n: 8192, "25%": lambda n: n // 4, "50%": lambda n: n // 2}
CUTS["90%"] = lambda n: n * 9 // 10

#: The corpus RAWs as they are: None = accepted by both.
WHOLE: dict[str, Reason | None] = {
    "raw/cr2_canon_img5952.cr2": None,
    "raw/dng_lg-h815_skia_sample_1mp.dng": None,
    "raw/kdc_kodak_dc50.kdc": None,
    "raw/synthetic_oiio_valid-32x32.dng": None,
    "raw/metadata_only/exifpy_nikon_z9_dng17.dng": Reason.RAW_UNSUPPORTED,  # JPEG XL DNG 1.7
    "raw/metadata_only/exifpy_sony_a7iii.arw": Reason.TRUNCATED,  # its first 8 KB only
    "raw/metadata_only/exiftool_CanonRaw.cr2": Reason.RAW_NO_IMAGE_DATA,
    "raw/metadata_only/exiftool_CanonRaw.cr3": Reason.RAW_NO_IMAGE_DATA,
    "raw/metadata_only/exiftool_DNG.dng": Reason.RAW_NO_IMAGE_DATA,
    "raw/metadata_only/exiftool_FujiFilm.raf": Reason.RAW_NO_IMAGE_DATA,
    "raw/metadata_only/exiftool_Nikon.nef": Reason.RAW_NO_IMAGE_DATA,
    "raw/metadata_only/exiftool_Panasonic.rw2": Reason.RAW_NO_IMAGE_DATA,
}
#: Originals without image data, whose cuts keep that reason (no data to cut).
NO_DATA_TO_CUT = {"raw/metadata_only/exiftool_Panasonic.rw2"}


def _reason(result: Probe | Developed | Failure) -> Reason | None:
    return result.reason if isinstance(result, Failure) else None


def test_the_table_covers_the_corpus() -> None:
    assert set(RAWS) == set(WHOLE), "a RAW was added to or removed from the corpus"


def _cases() -> list[tuple[str, str]]:
    cases = []
    for rel in RAWS:
        size = (CORPUS / rel).stat().st_size
        cases += [(rel, label) for label, cut in CUTS.items() if 0 < cut(size) < size]
    return cases


@pytest.mark.parametrize(("rel", "cut"), _cases())
def test_a_cut_raw_gets_one_reason(rel: str, cut: str, tmp_path: Path) -> None:
    data = (CORPUS / rel).read_bytes()
    path = tmp_path / Path(rel).name
    path.write_bytes(data[: CUTS[cut](len(data))])
    probed, developed = probe(path), develop(path, policy="embedded-preview")
    assert _reason(probed) is not None, f"the probe accepted {rel} cut at {cut}"
    assert _reason(developed) is _reason(probed), (probed, developed)
    expected = Reason.RAW_NO_IMAGE_DATA if rel in NO_DATA_TO_CUT else Reason.TRUNCATED
    assert _reason(probed) is expected, probed


@pytest.mark.parametrize("rel", RAWS)
def test_a_whole_raw_gets_one_reason(rel: str) -> None:
    probed = probe(CORPUS / rel)
    assert _reason(probed) is WHOLE[rel], probed
    if WHOLE[rel] is None:
        # Accepted: test_raw.py::test_develops_plausible_images develops each of these
        # with policy="embedded-preview" (not repeated here: a LibRaw child per file).
        return
    developed = develop(CORPUS / rel, policy="embedded-preview")
    assert isinstance(probed, Failure), probed
    assert isinstance(developed, Failure), developed
    assert developed.reason is probed.reason
    assert developed.message == probed.message  # the same sentence, not just the code
