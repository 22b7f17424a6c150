"""Every file of the shared corpus has an expected probe verdict: a format or a reason code."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import pytest

from darkroom_imaging.formats import Format
from darkroom_imaging.outcomes import Failure, Reason
from darkroom_imaging.probe import Probe, probe

CORPUS = Path(
    os.environ.get("DARKROOM_CORPUS") or Path(__file__).resolve().parents[4] / "shared" / "corpus"
)
F, R = Format, Reason

EXPECTED: dict[str, Format | Reason] = {
    "raw/cr2_canon_img5952.cr2": F.CR2,
    "raw/dng_lg-h815_skia_sample_1mp.dng": F.DNG,
    "raw/kdc_kodak_dc50.kdc": F.KDC,
    "raw/synthetic_oiio_valid-32x32.dng": F.DNG,
    "raw/metadata_only/exiftool_CanonRaw.cr2": R.RAW_NO_IMAGE_DATA,
    "raw/metadata_only/exiftool_CanonRaw.cr3": R.RAW_NO_IMAGE_DATA,
    "raw/metadata_only/exiftool_Nikon.nef": R.RAW_NO_IMAGE_DATA,
    "raw/metadata_only/exiftool_FujiFilm.raf": R.RAW_NO_IMAGE_DATA,
    "raw/metadata_only/exiftool_Panasonic.rw2": R.RAW_NO_IMAGE_DATA,
    "raw/metadata_only/exiftool_DNG.dng": R.RAW_NO_IMAGE_DATA,
    "raw/metadata_only/exifpy_sony_a7iii.arw": R.TRUNCATED,
    "raw/metadata_only/exifpy_nikon_z9_dng17.dng": R.RAW_UNSUPPORTED,
    "jpeg/exif_gps_nikon_coolpix_p6000.jpg": F.JPEG,
    "jpeg/exif_lens_gps_iphone6.jpg": F.JPEG,
    "jpeg/exif_lens_gps_nikon_d70s.jpg": F.JPEG,
    "jpeg/exif_canon_40d_makernote.jpg": F.JPEG,
    "jpeg/exif_fujifilm_finepix6900.jpg": F.JPEG,
    "jpeg/exif_nikon_d70.jpg": F.JPEG,
    "jpeg/exif_olympus_c8080wz.jpg": F.JPEG,
    "jpeg/exif_pentax_k10d.jpg": F.JPEG,
    "jpeg/exif_panasonic_dmc-fz30.jpg": F.JPEG,
    "jpeg/exif_gps_tahoe.jpg": F.JPEG,
    "jpeg/exif_gps_only_thompson_springs.jpg": F.JPEG,
    **{
        f"orientation/{kind}_{n}.jpg": F.JPEG
        for kind in ("Landscape", "Portrait")
        for n in range(9)
    },
    "large/canon_5d3_22mp.jpg": F.JPEG,
    "large/craft_beer_24mp_progressive.jpg": F.JPEG,
    "large/sharp_bench_2569067123_aca715a2ee_o.jpg": F.JPEG,
    "large/giant_20000x14000_gray.jpg": R.TOO_MANY_PIXELS,
    "formats/progressive_960x1280.jpg": F.JPEG,
    "formats/cmyk_swop_icc.jpg": F.JPEG,
    "formats/cmyk_no_icc.jpg": F.JPEG,
    "formats/grayscale_gray22_icc.jpg": F.JPEG,
    "formats/icc_adobergb_canon_eos7d.jpg": F.JPEG,
    "formats/icc_displayp3_ultrahdr_pixel6pro.jpg": F.JPEG,
    "formats/png_rgba_alpha.png": F.PNG,
    "formats/png_16bit_rgb.png": F.PNG,
    "formats/tiff_16bit_rgb_icc.tiff": F.TIFF,
    "formats/tiff_camera_olympus_pc260001.tif": F.TIFF,
    "formats/tiff_ycbcr_no_refbw_fuji_dscf0013.tif": F.TIFF,
    "formats/gif_animated.gif": F.GIF,
    "formats/webp_lossy.webp": F.WEBP,
    "formats/webp_animated.webp": F.WEBP,
    "formats/webp_lossless_alpha.webp": F.WEBP,
    "formats/avif_8bit_srgb.avif": F.AVIF,
    "formats/avif_10bit_hdr_p3_nclx.avif": F.AVIF,
    "formats/heic_iphone.heic": F.HEIC,
    "formats/jxl_8bit_srgb.jxl": F.JXL,
    "bad/exif_rich_truncated_ultrahdr_pixel6.jpg": R.TRUNCATED,
    "bad/truncated.jpg": R.TRUNCATED,
    "bad/corrupt_header.jpg": R.TRUNCATED,
    "bad/truncated.png": R.TRUNCATED,
    "bad/corrupt_png_broken_data_stream.png": R.DECODE_ERROR,
    "bad/bomb_decompression_bomb.gif": R.TOO_MANY_PIXELS,
    "bad/bomb_17000x17000.avif": R.TOO_MANY_PIXELS,
    "bad/bomb_32000x32000.dng": R.TOO_MANY_PIXELS,
    "bad/truncated.dng": R.TRUNCATED,
    "bad/tiny_progressive_193x31423.jpg": R.DECODE_ERROR,
    "bad/fuzzed_jpeg_unidentifiable.jpg": R.DECODE_ERROR,
    "bad/fuzzed_jpeg_truncated_read.jpg": R.DECODE_ERROR,
    "bad/fuzz_crash_pillow_1152ec2d.tif": R.TRUNCATED,
    "bad/fuzz_crash_pillow_0c7e0e8e.tif": R.TRUNCATED,
    "bad/exif_gps_typeerror.jpg": F.JPEG,
    "bad/exif_invalid.jpg": F.JPEG,
    "bad/html_renamed.jpg": R.UNSUPPORTED_FORMAT,
    "bad/svg_renamed.jpg": R.UNSUPPORTED_FORMAT,
    "bad/jpeg_with_nef_extension.nef": R.EXTENSION_MISMATCH,
    "bad/heic_with_jpg_extension.jpg": R.EXTENSION_MISMATCH,
    "bad/looks_like_svg.webp": F.WEBP,
    "bad/zero_bytes.jpg": R.EMPTY_FILE,
}


def _manifest() -> list[dict[str, str]]:
    with (CORPUS / "MANIFEST.csv").open(newline="") as f:
        return list(csv.DictReader(f))


def test_every_manifest_file_has_an_expectation() -> None:
    paths = {row["path"] for row in _manifest()}
    on_disk = {
        str(p.relative_to(CORPUS))
        for p in CORPUS.rglob("*")
        if p.is_file() and p.suffix.lower() not in (".csv", ".md")
    }
    assert paths == on_disk
    assert set(EXPECTED) == paths


@pytest.mark.parametrize("rel", sorted(EXPECTED))
def test_corpus_file_probes_as_expected(rel: str) -> None:
    result = probe(CORPUS / rel)
    expected = EXPECTED[rel]
    if isinstance(expected, Reason):
        assert isinstance(result, Failure), result
        assert result.reason is expected, result.message
        assert result.message
    else:
        assert isinstance(result, Probe), result
        assert result.format is expected
        assert result.is_raw == (rel.startswith("raw/"))


@pytest.mark.parametrize(
    "row",
    # The manifest has no size for the JPEG XL (n/a): test_heif_jxl.py checks it.
    [r for r in _manifest() if isinstance(EXPECTED[r["path"]], Format) and "x" in r["dimensions"]],
    ids=lambda r: r["path"],
)
def test_accepted_files_report_the_manifest_dimensions(row: dict[str, str]) -> None:
    result = probe(CORPUS / row["path"])
    assert isinstance(result, Probe)
    width, height = (int(v) for v in row["dimensions"].split("x"))
    assert (result.width, result.height) == (width, height)
    assert result.pixels == width * height
