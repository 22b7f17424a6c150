"""Camera RAW development to a JPEG master, bounded in time and memory.

Two policies:

* ``develop``: LibRaw demosaics the sensor data (rawpy ``postprocess``) with the camera's
  white balance, sRGB output primaries and 8 bits per sample. ``no_auto_bright`` stays
  False: LibRaw then scales the image so that 1 % of the pixels clip
  (``auto_bright_thr=0.01``), which is how dcraw/LibRaw approximate the camera's own
  exposure rendering; without it linear RAW data come out visibly dark, and a master has
  no user edits to fix that. ``half_size=True`` (a 2×2 binning instead of demosaicing,
  about 4× faster) is used when half the sensor still covers ``min_long_edge``.
* ``embedded-preview``: the camera's embedded JPEG (rawpy ``extract_thumb``) when its long
  edge is at least ``min_long_edge``, with its own EXIF orientation or else the RAW's;
  otherwise it falls back to ``develop``.

Before any child is started, :func:`develop` runs the header probe
(:func:`darkroom_imaging.probe.probe`) on the file: a RAW cut short is ``truncated``, one
whose image data are absent ``raw_no_image_data``, an unknown camera ``raw_unsupported``,
with the very sentence the ingest stage gave, so the pipeline's two verdicts on one file
cannot disagree. LibRaw's own errors in the child map to the same codes as in the probe:
an I/O or data error is ``raw_no_image_data``, an unknown camera ``raw_unsupported``.

LibRaw applies the RAW's orientation itself (``user_flip`` left at its default, the
file's ``flip``). A successful decode is not proof of an image: files whose image data
were stripped still decode, to black (:data:`BLACK_MEAN_MAX`) or to noise
(:data:`NOISE_CORRELATION_MAX`), and those are refused as ``raw_black`` / ``raw_garbage``.

Every development runs in a child Python process (``python -m darkroom_imaging.raw``): a
hang is killed at ``max_seconds`` (``raw_timeout``), a crash of LibRaw on a hostile file
cannot take the caller down, and the child's address space is capped at
``max_memory_bytes`` (``RLIMIT_AS``). The price is about 0.3 s of start-up per file. The
child reports its peak resident set (``VmHWM``) as ``child_peak_rss_bytes``.

The master carries no metadata from LibRaw or libvips; :func:`copy_capture_metadata`
copies the RAW's capture EXIF (:data:`CAPTURE_TAGS`, never GPS or orientation) into it
with ExifTool.
"""

from __future__ import annotations

import json
import logging
import pickle
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pyvips
import rawpy

from darkroom_imaging.exiftool import ExifTool, ExifToolError, shared_exiftool
from darkroom_imaging.outcomes import Failure, Reason
from darkroom_imaging.probe import Probe, ProbeLimits, probe

log = logging.getLogger(__name__)

Policy = Literal["develop", "embedded-preview"]

#: Mean luminance (0–255, Rec. 709 weights on the 8-bit output) at or below which a
#: developed image counts as black; with its 99th percentile under BLACK_P99_MAX.
BLACK_MEAN_MAX = 3.0
BLACK_P99_MAX = 16.0
#: Full-resolution lag-1 neighbour correlation of luminance below which a contrasty image
#: is noise: photographs give 0.85 or more, independent noise about 0.
NOISE_CORRELATION_MAX = 0.5
#: Luminance standard deviation (0–255) above which low correlation means garbage.
NOISE_STD_MIN = 20.0
_CORRELATION_LINES = 512

#: Smallest correlation between the four colour-filter planes of the raw mosaic (2x2
#: superpixels) for sensor data of a real scene: real files give 0.81 (synthetic DNG),
#: 0.90 (KDC), 0.94 (CR2); the stripped Panasonic RW2 -0.002 and the stripped ExifTool
#: DNG 0.32. Unlike the neighbour correlation of the developed image it does not depend
#: on the half-size binning, which smooths the RW2 into a plausible-looking (0.98) but
#: false blue striped field and the DNG into a black-and-white one.
CFA_CORRELATION_MIN = 0.6

#: Long edge an embedded preview needs when no ``min_long_edge`` is given (or the sensor's
#: long edge, if smaller): stripped RAWs keep 8x8 or 160x120 thumbnails only.
PREVIEW_MIN_LONG_EDGE = 1024

DEFAULT_MAX_SECONDS = 120.0
DEFAULT_MAX_MEMORY = 4 * 1024**3
DEFAULT_MAX_PIXELS = 200_000_000

_LIBRAW_FLIP = {0: 1, 3: 3, 5: 8, 6: 6}

#: The pipeline's development defaults (the raw-provider's ``policy``, ``master_box`` and
#: ``master_quality`` settings): the camera's embedded JPEG when it covers the largest
#: variant box (width, height px), JPEG quality 92.
DEFAULT_POLICY: Policy = "embedded-preview"
DEFAULT_MASTER_BOX = (1920, 1080)
DEFAULT_MASTER_QUALITY = 92

#: EXIF tags a master copies from its RAW (ExifTool names): who, with what, when, how.
#: Never GPS (a master is shared further than its original) and never Orientation (the
#: master's pixels are already upright, so the tag is left out: 1 by default).
CAPTURE_TAGS = (
    "Make",
    "Model",
    "LensModel",
    "DateTimeOriginal",
    "CreateDate",
    "OffsetTimeOriginal",
    "ExposureTime",
    "FNumber",
    "ISO",
    "FocalLength",
    "Artist",
    "Copyright",
)


@dataclass(frozen=True, slots=True)
class Developed:
    """A developed RAW: ``jpeg`` holds the baseline JPEG master (sRGB, untagged = sRGB,
    no metadata), ``width``/``height`` its pixels after orientation, ``provenance`` how it
    was made (engine, LibRaw and libvips versions, ``decode_path``: ``embedded-preview``,
    ``develop`` or ``develop-half``, ``seconds`` of wall time, image statistics).
    """

    jpeg: bytes
    width: int
    height: int
    provenance: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (the JPEG itself is replaced by its size in bytes)."""
        return {
            "width": self.width,
            "height": self.height,
            "bytes": len(self.jpeg),
            "provenance": self.provenance,
        }


def versions() -> dict[str, str]:
    """Versions of the decoding stack, as recorded in provenance."""
    return {
        "engine": "darkroom-imaging",
        "libraw": ".".join(str(v) for v in rawpy.libraw_version),
        "rawpy": rawpy.__version__,
        "libvips": f"{pyvips.version(0)}.{pyvips.version(1)}.{pyvips.version(2)}",
    }


def master_long_edge(width: int, height: int, orientation: int, box: tuple[int, int]) -> int:
    """Return the long edge (px) a master needs so the largest variant is not upscaled.

    ``width``/``height``: the RAW's stored size in pixels (before ``orientation``, EXIF
    1–8); ``box``: the largest variant's (width, height), which fits the image *inside*
    it: for a 3:2 sensor and a 1920×1080 box that is 1620×1080, so a 1728×1152 embedded
    preview suffices. Never more than the sensor's long edge; the box's long edge when the
    size is unknown (0).
    """
    if width <= 0 or height <= 0:
        return max(box)
    w, h = (height, width) if orientation >= 5 else (width, height)
    scale = min(box[0] / w, box[1] / h, 1.0)
    return max(1, round(max(w, h) * scale))


def check_raw(
    path: Path, *, declared_name: str | None = None, max_pixels: int = DEFAULT_MAX_PIXELS
) -> Probe | Failure:
    """Run the header probe on ``path`` as :func:`develop` does before developing.

    ``declared_name``: the name the file arrived with (its extension must agree with the
    content; default ``path.name``). ``max_pixels``: the probe's pixel limit; no byte
    limit. Returns the probe's :class:`Probe` of an accepted RAW, its :class:`Failure`
    otherwise (``truncated``, ``raw_no_image_data``, ``raw_unsupported``,
    ``too_many_pixels``, ``extension_mismatch``...), and ``unsupported_format`` for an
    accepted image that is not a RAW. Raises :class:`OSError` if ``path`` is unreadable.
    """
    limits = ProbeLimits(max_pixels=max_pixels, max_bytes=sys.maxsize)
    result = probe(Path(path), declared_name=declared_name, limits=limits)
    if isinstance(result, Probe) and not result.is_raw:
        return Failure(
            Reason.UNSUPPORTED_FORMAT,
            f"The file is a {result.format.name} image, not a camera RAW.",
        )
    return result


def develop(
    path: Path,
    *,
    policy: Policy = "develop",
    min_long_edge: int | None = None,
    max_seconds: float = DEFAULT_MAX_SECONDS,
    max_memory_bytes: int | None = DEFAULT_MAX_MEMORY,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    quality: int = 92,
    isolate: bool = True,
    declared_name: str | None = None,
    probe_first: bool = True,
) -> Developed | Failure:
    """Develop the RAW file at ``path`` into a JPEG master (see the module docstring).

    ``min_long_edge``: the long edge in pixels the largest variant needs (None: any
    preview is enough, and development is full size). ``max_seconds``: wall-time limit,
    beyond which the child is killed (``raw_timeout``). ``max_memory_bytes``: address-space
    cap of the child (None: no cap). ``max_pixels``: sensor pixels refused before decoding
    (``too_many_pixels``). ``quality``: JPEG quality 1–100. ``isolate=False`` runs in the
    calling process (no time or memory bound; for debugging). ``declared_name``: the
    name the file arrived with, for the probe's extension check (default ``path.name``).
    ``probe_first=False`` skips the probe (to exercise LibRaw and the black and noise
    checks, the second line of defence, on files the probe would refuse).

    The file is probed first (:func:`check_raw`); a refusal is returned as it is, without
    starting LibRaw. Returns a :class:`Failure` with the probe's reasons (``truncated``,
    ``raw_unsupported``, ``raw_no_image_data``, ``extension_mismatch``,
    ``unsupported_format``...), ``raw_black``, ``raw_garbage``, ``raw_timeout``,
    ``too_many_pixels``, ``decode_error`` or ``encode_failed``. Raises
    :class:`FileNotFoundError` if ``path`` does not exist.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(path)
    if policy not in ("develop", "embedded-preview"):
        raise ValueError(f"unknown policy {policy!r}")
    if probe_first:
        checked = check_raw(path, declared_name=declared_name, max_pixels=max_pixels)
        if isinstance(checked, Failure):
            return checked
    args = (str(path), policy, min_long_edge, quality, max_pixels)
    start = time.monotonic()
    if isolate:
        outcome = _run_isolated(args, max_seconds, max_memory_bytes)
    else:
        outcome = _develop_here(*args)
    if isinstance(outcome, Failure):
        return outcome
    jpeg, width, height, details = outcome
    provenance = {**versions(), **details, "policy": policy}
    provenance["seconds"] = round(time.monotonic() - start, 3)
    return Developed(jpeg=jpeg, width=width, height=height, provenance=provenance)


_Outcome = tuple[bytes, int, int, dict[str, Any]] | Failure


def _run_isolated(
    args: tuple[Any, ...], max_seconds: float, max_memory_bytes: int | None
) -> _Outcome:
    # A fresh interpreter per RAW (about 0.3 s of imports) rather than multiprocessing:
    # spawn/forkserver children re-import the caller's __main__, fork copies its threads.
    cmd = [sys.executable, "-m", "darkroom_imaging.raw", json.dumps([*args, max_memory_bytes])]
    try:
        done = subprocess.run(cmd, capture_output=True, timeout=max_seconds, check=False)
    except subprocess.TimeoutExpired:
        return Failure(Reason.RAW_TIMEOUT, f"RAW development took longer than {max_seconds} s.")
    if done.returncode != 0 or not done.stdout:
        stderr = done.stderr.decode("utf-8", "replace")
        if "bad_alloc" in stderr or "MemoryError" in stderr:
            return Failure(
                Reason.TOO_MANY_PIXELS,
                f"RAW development needed more than its memory cap of {max_memory_bytes} bytes.",
            )
        tail = stderr.strip().splitlines()[-1:] or [""]
        return Failure(
            Reason.DECODE_ERROR,
            f"The RAW decoder stopped unexpectedly (exit code {done.returncode}).",
            tail[0] or None,
        )
    outcome: _Outcome = pickle.loads(done.stdout)
    return outcome


def _worker_main() -> None:
    """Entry point of the child process: JSON arguments in argv, pickled outcome on stdout."""
    *args, max_memory_bytes = json.loads(sys.argv[1])
    if max_memory_bytes:
        resource.setrlimit(resource.RLIMIT_AS, (max_memory_bytes, max_memory_bytes))
    try:
        outcome = _develop_here(*args)
    except MemoryError:
        outcome = Failure(
            Reason.TOO_MANY_PIXELS,
            f"RAW development needed more than its memory cap of {max_memory_bytes} bytes.",
        )
    if not isinstance(outcome, Failure):
        outcome[3]["child_peak_rss_bytes"] = _peak_rss_bytes()
    sys.stdout.buffer.write(pickle.dumps(outcome))
    sys.stdout.flush()


def _peak_rss_bytes() -> int:
    """This process's peak resident set in bytes, interpreter included.

    ``VmHWM`` of ``/proc/self/status`` (proc(5)), which starts afresh at ``execve``;
    ``getrusage().ru_maxrss`` does not (Linux keeps the parent's peak across fork and
    exec, so a child of a big process would report the parent's). Falls back to
    ``ru_maxrss`` (KiB) where ``/proc`` is absent.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _develop_here(
    path: str, policy: Policy, min_long_edge: int | None, quality: int, max_pixels: int
) -> _Outcome:
    try:
        with rawpy.imread(path) as raw:
            sizes = raw.sizes
            if sizes.raw_width * sizes.raw_height > max_pixels:
                return Failure(
                    Reason.TOO_MANY_PIXELS,
                    f"The sensor has {sizes.raw_width}x{sizes.raw_height} pixels, "
                    f"more than the limit of {max_pixels}.",
                )
            orientation = _LIBRAW_FLIP.get(sizes.flip, 1)
            details: dict[str, Any] = {
                "sensor_width": sizes.width,
                "sensor_height": sizes.height,
                "orientation": orientation,
            }
            image: pyvips.Image | None = None
            if policy == "embedded-preview":
                image, note = _embedded_preview(raw, orientation, min_long_edge)
                if image is not None:
                    details["decode_path"] = "embedded-preview"
                else:
                    details["preview_fallback"] = note
            if image is None:
                half = min_long_edge is not None and (
                    max(sizes.width, sizes.height) // 2 >= min_long_edge
                )
                cfa = cfa_plane_correlation(raw)
                if cfa is not None:
                    details["cfa_plane_correlation"] = round(cfa, 3)
                    if cfa < CFA_CORRELATION_MIN:
                        return Failure(
                            Reason.RAW_GARBAGE,
                            "The sensor data are not a picture: its colour planes do not "
                            f"follow one scene (correlation {cfa:.2f}).",
                        )
                rgb = raw.postprocess(
                    use_camera_wb=True,
                    output_color=rawpy.ColorSpace.sRGB,
                    output_bps=8,
                    no_auto_bright=False,
                    half_size=half,
                )
                details["decode_path"] = "develop-half" if half else "develop"
                verdict = judge(rgb)
                details.update(verdict.stats)
                if verdict.failure is not None:
                    return verdict.failure
                image = pyvips.Image.new_from_array(np.ascontiguousarray(rgb))
                image = image.copy(interpretation=pyvips.Interpretation.SRGB)
    except (rawpy.LibRawFileUnsupportedError, rawpy.LibRawNotImplementedError) as exc:
        return Failure(
            Reason.RAW_UNSUPPORTED,
            "This RAW file comes from a camera or format variant the RAW decoder does not support.",
            _msg(exc),
        )
    except (
        rawpy.LibRawIOError,
        rawpy.LibRawDataError,
        rawpy.LibRawRequestForNonexistentImageError,
    ) as exc:
        # As in the probe: LibRaw's I/O and data errors mean the sensor data are not there.
        return Failure(
            Reason.RAW_NO_IMAGE_DATA,
            "The RAW image data are missing or unreadable: the file may be cut short or "
            "stripped of its image data.",
            _msg(exc),
        )
    except (rawpy.LibRawTooBigError, rawpy.LibRawUnsufficientMemoryError) as exc:
        return Failure(Reason.TOO_MANY_PIXELS, "The RAW image is too big to develop.", _msg(exc))
    except rawpy.LibRawError as exc:
        return Failure(Reason.DECODE_ERROR, "The RAW file could not be developed.", _msg(exc))
    try:
        jpeg = image.jpegsave_buffer(Q=quality, optimize_coding=True, keep=pyvips.ForeignKeep.NONE)
    except pyvips.Error as exc:
        return Failure(
            Reason.ENCODE_FAILED, "The developed image could not be encoded as JPEG.", str(exc)
        )
    return bytes(jpeg), image.width, image.height, details


def _embedded_preview(
    raw: rawpy.RawPy, orientation: int, min_long_edge: int | None
) -> tuple[pyvips.Image | None, str]:
    sensor_long = max(raw.sizes.width, raw.sizes.height)
    needed = min_long_edge if min_long_edge is not None else min(PREVIEW_MIN_LONG_EDGE, sensor_long)
    try:
        thumb = raw.extract_thumb()
    except (rawpy.LibRawNoThumbnailError, rawpy.LibRawUnsupportedThumbnailError):
        return None, "no embedded preview"
    if thumb.format != rawpy.ThumbFormat.JPEG:
        return None, "embedded preview is not a JPEG"
    try:
        image = pyvips.Image.jpegload_buffer(thumb.data)
        if max(image.width, image.height) < needed:
            return None, f"embedded preview {image.width}x{image.height} is too small"
        own = image.get("orientation") if "orientation" in image.get_fields() else 1
        if own not in range(2, 9):
            # Previews are stored as the sensor saw them; the RAW's Orientation applies.
            image = image.copy()
            image.set_type(pyvips.GValue.gint_type, "orientation", orientation)
        image = image.autorot()
        if image.get_typeof("icc-profile-data"):
            image = image.icc_transform("srgb", embedded=True)
        if image.bands == 1:
            image = image.colourspace(pyvips.Interpretation.SRGB)
        verdict = judge(image.numpy())
        if verdict.failure is not None:
            return None, f"embedded preview rejected: {verdict.failure.reason.value}"
        return image, ""
    except pyvips.Error:
        return None, "embedded preview does not decode"


def cfa_plane_correlation(raw: Any, *, samples: int = 256) -> float | None:
    """Return the smallest Pearson correlation between the 2x2 colour-filter planes.

    ``raw`` is an open :class:`rawpy.RawPy`. Each plane (``raw_image_visible[i::2, j::2]``)
    is subsampled to about ``samples`` rows and columns. ``None`` for sensors without a
    2x2 mosaic (LinearRaw DNG, Foveon, X-Trans) or planes without variance.
    """
    pattern = getattr(raw, "raw_pattern", None)
    if pattern is None or np.asarray(pattern).shape != (2, 2):
        return None
    mosaic = raw.raw_image_visible
    h, w = mosaic.shape[0] - mosaic.shape[0] % 2, mosaic.shape[1] - mosaic.shape[1] % 2
    if h < 4 or w < 4:
        return None
    step = max(1, (h // 2) // samples)
    planes = [
        mosaic[i:h:2, j:w:2][::step, ::step].astype(np.float32).ravel()
        for i in (0, 1)
        for j in (0, 1)
    ]
    if any(float(p.std()) == 0.0 for p in planes):
        return None
    return float(np.corrcoef(np.stack(planes)).min())


@dataclass(frozen=True, slots=True)
class Verdict:
    """Outcome of :func:`judge`: ``failure`` None for a plausible image; ``stats`` the figures."""

    failure: Failure | None
    stats: dict[str, float]


def judge(rgb: np.ndarray) -> Verdict:
    """Tell whether a decoded H×W×3 uint8 image looks like a photograph.

    On luminance (Rec. 709 weights, 0–255): ``mean_luma`` and ``p99_luma`` of a copy
    binned to at most 512 px, ``luma_std`` and ``neighbour_correlation`` at full
    resolution: the smaller of the horizontal and vertical lag-1 Pearson correlations,
    over at most :data:`_CORRELATION_LINES` rows and columns. Black: mean ≤
    :data:`BLACK_MEAN_MAX` and p99 < :data:`BLACK_P99_MAX`. Noise: correlation <
    :data:`NOISE_CORRELATION_MAX` while the contrast is high (std > :data:`NOISE_STD_MIN`),
    so a flat, sensor-noise-only frame is not taken for garbage. Measured: real CR2 0.997,
    LG DNG 0.988, Kodak KDC 0.976, synthetic 32x32 DNG 0.889; the stripped Panasonic
    RW2 that LibRaw "decodes" 0.08 (it alternates pixel by pixel; binned 2x it reaches 0.9,
    hence full resolution).
    """
    img = np.asarray(rgb)
    if img.ndim == 2:
        img = img[:, :, None]
    weights = np.array([0.2126, 0.7152, 0.0722], dtype=np.float32)
    luma = img[:, :, 0].astype(np.float32) if img.shape[2] < 3 else img[:, :, :3] @ weights
    step = max(1, int(np.ceil(max(luma.shape) / 512)))
    h, w = (luma.shape[0] // step) * step, (luma.shape[1] // step) * step
    small = luma[:h, :w].reshape(h // step, step, w // step, step).mean(axis=(1, 3))
    mean = float(small.mean())
    p99 = float(np.percentile(small, 99))
    rows = luma[:: max(1, luma.shape[0] // _CORRELATION_LINES), :]
    cols = luma[:, :: max(1, luma.shape[1] // _CORRELATION_LINES)]
    corr = min(_lag1(rows[:, :-1], rows[:, 1:]), _lag1(cols[:-1, :], cols[1:, :]))
    std = float(rows.std())
    stats = {
        "mean_luma": round(mean, 2),
        "p99_luma": round(p99, 2),
        "luma_std": round(std, 2),
        "neighbour_correlation": round(corr, 3),
    }
    if mean <= BLACK_MEAN_MAX and p99 < BLACK_P99_MAX:
        return Verdict(
            Failure(Reason.RAW_BLACK, f"The developed image is black (mean luminance {mean:.1f})."),
            stats,
        )
    if corr < NOISE_CORRELATION_MAX and std > NOISE_STD_MIN:
        return Verdict(
            Failure(
                Reason.RAW_GARBAGE,
                f"The developed image is noise, not a picture (neighbour correlation {corr:.2f}).",
            ),
            stats,
        )
    return Verdict(None, stats)


def _lag1(x: np.ndarray, y: np.ndarray) -> float:
    if x.size < 2:
        return 1.0
    sx, sy = float(x.std()), float(y.std())
    if sx < 1e-6 or sy < 1e-6:
        return 1.0  # flat image: no noise (black/white handled by the mean test)
    return float(((x - x.mean()) * (y - y.mean())).mean() / (sx * sy))


def copy_capture_metadata(
    raw_path: Path, jpeg: bytes, *, exiftool: ExifTool | None = None
) -> bytes:
    """Return ``jpeg`` (a master developed from ``raw_path``) with the RAW's capture EXIF.

    Copies :data:`CAPTURE_TAGS` that the RAW has (a tag it lacks is left out) with
    ExifTool's ``-TagsFromFile``, and sets EXIF ``ColorSpace`` to 1 (sRGB, the master's
    space; ExifTool would otherwise add 65535, uncalibrated). No GPS, no Orientation
    (absent: 1), no thumbnail, no maker notes. ``exiftool``: the process to use (default
    :func:`~darkroom_imaging.exiftool.shared_exiftool`).

    Never raises for a missing or failing ExifTool: the master is returned unchanged
    and a warning logged, since a master without EXIF beats no master.
    """
    tool = exiftool if exiftool is not None else shared_exiftool()
    source = str(Path(raw_path).absolute())
    with tempfile.TemporaryDirectory(prefix="darkroom-master-") as tmp:
        target = Path(tmp) / "master.jpg"
        target.write_bytes(jpeg)
        try:
            _out, err = tool.execute(
                "-TagsFromFile",
                source,
                *(f"-{tag}" for tag in CAPTURE_TAGS),
                "-ExifIFD:ColorSpace=1",
                "-overwrite_original",
                str(target),
            )
        except ExifToolError as exc:
            log.warning(
                "master written without the RAW's EXIF: ExifTool failed",
                extra={"raw": source, "error": str(exc)},
            )
            return jpeg
        errors = [line for line in err.splitlines() if line.startswith("Error")]
        if errors:
            log.warning(
                "master written without the RAW's EXIF: ExifTool refused",
                extra={"raw": source, "error": errors[0]},
            )
            return jpeg
        return target.read_bytes()


def _msg(exc: BaseException) -> str:
    arg = exc.args[0] if exc.args else exc
    return arg.decode() if isinstance(arg, bytes) else str(arg)


if __name__ == "__main__":
    _worker_main()
