"""``darkroom render``: render a profile's variants of local files with the engine, as the pipeline would.

Each FILE goes the pipeline's way:

1. it is probed from its headers first (:func:`darkroom_imaging.probe.probe`, with the
   ingest stage's limits: 200 MP, or ``--max-pixels``, and 200 MiB); a file the probe
   refuses (a JPEG named ``.nef``: ``extension_mismatch``; a cut file: ``truncated``...)
   is not rendered, and every variant reports the probe's reason and sentence;
2. a camera RAW is developed into a JPEG master with the raw-provider's defaults
   (:func:`darkroom_imaging.raw.develop`, policy ``embedded-preview``, long edge enough
   for a 1920×1080 box, JPEG quality 92) and given the RAW's capture EXIF
   (:func:`darkroom_imaging.raw.copy_capture_metadata`); the master is written as
   ``OUT/<stem>/master.jpg`` and its variants are rendered from it; a RAW that cannot be
   developed reports development's reason for every variant;
3. the variants are written as ``OUT/<stem>/<variant>.<ext>``.

Exit status 0 when every variant of every file rendered, 1 when any failed (each
failure is reported with its reason code), 2 for a bad profile or a missing file.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from darkroom_imaging.outcomes import Failure
    from darkroom_imaging.probe import Probe

#: The ingest stage's default upload limit (``DARKROOM_INGEST_MAX_UPLOAD_BYTES``), bytes.
MAX_FILE_BYTES = 200 * 1024 * 1024
#: The ingest and variants stages' default pixel limit (``max_pixels``), width × height.
MAX_PIXELS = 200_000_000


def register(subparsers: Any) -> None:
    """Add the ``render`` subcommand to the ``darkroom`` parser."""
    parser = subparsers.add_parser(
        "render",
        help="render variants of local image files (RAWs developed first)",
        description="Probe each FILE as ingest does, develop a camera RAW into a master as "
        "the raw-provider does, and render every variant of a profile into "
        "OUT/<stem>/<variant>.<ext> (a RAW's master into OUT/<stem>/master.jpg). A file "
        "the probe refuses is not rendered: each variant reports the probe's reason.",
    )
    parser.add_argument("files", nargs="+", type=Path, metavar="FILE")
    parser.add_argument("--out", required=True, type=Path, help="output folder")
    parser.add_argument(
        "--profile",
        default="default",
        help="built-in profile name or a JSON file (default: default)",
    )
    parser.add_argument("--artist", default="", help="artist for watermarks and EXIF Artist")
    parser.add_argument("--copyright", default="", help="EXIF Copyright for keep_copyright specs")
    # default None: MAX_PIXELS, the pipeline's own limit
    parser.add_argument(
        "--max-pixels", type=int, default=None, help="refuse larger sources (default 200 MP)"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Render ``args.files``; return 0 if all variants rendered, 1 if any failed, 2 on bad input.

    2: the profile is unknown or invalid, or a FILE does not exist (nothing is rendered).
    """
    from darkroom_imaging.outcomes import Failure
    from darkroom_imaging.probe import ProbeLimits, probe
    from darkroom_imaging.profiles import ProfileError, load_profile
    from darkroom_imaging.render import RenderContext, RenderedVariant, render

    try:
        profile = load_profile(args.profile)
    except ProfileError as exc:
        print(f"darkroom render: {exc}", file=sys.stderr)
        return 2
    missing = [p for p in args.files if not p.is_file()]
    for p in missing:
        print(f"darkroom render: no such file: {p}", file=sys.stderr)
    if missing:
        return 2
    max_pixels = MAX_PIXELS if args.max_pixels is None else args.max_pixels
    limits = ProbeLimits(max_pixels=max_pixels, max_bytes=MAX_FILE_BYTES)
    context = RenderContext(artist=args.artist, copyright=args.copyright, max_pixels=max_pixels)
    report: list[dict[str, Any]] = []
    ok = True
    for path in args.files:
        folder = args.out / path.stem
        entry: dict[str, Any] = {"file": str(path), "variants": []}
        report.append(entry)
        probed = probe(path, limits=limits)
        source: Path | bytes = path
        if not isinstance(probed, Failure) and probed.is_raw:
            developed = _develop(path, probed, max_pixels)
            if isinstance(developed, Failure):
                probed = developed
            else:
                source, entry["developed"] = developed
                folder.mkdir(parents=True, exist_ok=True)
                master = folder / "master.jpg"
                master.write_bytes(source)
                entry["master"] = str(master)
                if not args.json:
                    d = entry["developed"]
                    print(f"{path}: developed {d['width']}x{d['height']} -> {master}")
        if isinstance(probed, Failure):
            ok = False
            entry["reason"] = probed.reason.value
            for spec in profile.specs:
                entry["variants"].append({"variant": spec.name, **probed.as_dict()})
                if not args.json:
                    print(
                        f"{path}: {spec.name} FAILED {probed.reason.value}: {probed.message}",
                        file=sys.stderr,
                    )
            continue
        result = render(source, profile.specs, context=context)
        if result.decode is not None:
            entry["decode_seconds"] = round(result.decode.seconds, 4)
        for outcome in result.outcomes:
            spec = profile.spec(outcome.name)
            if isinstance(outcome, RenderedVariant):
                folder.mkdir(parents=True, exist_ok=True)
                target = folder / f"{outcome.name}.{spec.extension}"
                target.write_bytes(outcome.data)
                item = {
                    "variant": outcome.name,
                    "path": str(target),
                    "width": outcome.width,
                    "height": outcome.height,
                    "bytes": outcome.bytes,
                    "seconds": round(outcome.seconds, 4),
                }
                if not args.json:
                    print(
                        f"{path}: {outcome.name} {outcome.width}x{outcome.height} {outcome.bytes} B -> {target}"
                    )
            else:
                ok = False
                item = {"variant": outcome.name, **outcome.failure.as_dict()}
                if not args.json:
                    print(
                        f"{path}: {outcome.name} FAILED {outcome.failure.reason.value}: {outcome.failure.message}",
                        file=sys.stderr,
                    )
            entry["variants"].append(item)
    if args.json:
        print(json.dumps({"profile": profile.name, "files": report}, indent=2))
    return 0 if ok else 1


def _develop(path: Path, probed: Probe, max_pixels: int) -> tuple[bytes, dict[str, Any]] | Failure:
    """Develop the RAW at ``path`` as the raw-provider does by default.

    ``probed``: its :class:`~darkroom_imaging.probe.Probe`. Returns the master JPEG (with
    the RAW's capture EXIF) and the development summary
    (:meth:`~darkroom_imaging.raw.Developed.to_dict`), or development's
    :class:`~darkroom_imaging.outcomes.Failure`.
    """
    from darkroom_imaging.outcomes import Failure
    from darkroom_imaging.raw import (
        DEFAULT_MASTER_BOX,
        DEFAULT_MASTER_QUALITY,
        DEFAULT_POLICY,
        copy_capture_metadata,
        develop,
        master_long_edge,
    )

    edge = master_long_edge(probed.width, probed.height, probed.orientation, DEFAULT_MASTER_BOX)
    result = develop(
        path,
        policy=DEFAULT_POLICY,
        min_long_edge=edge,
        quality=DEFAULT_MASTER_QUALITY,
        max_pixels=max_pixels,
    )
    if isinstance(result, Failure):
        return result
    return copy_capture_metadata(path, result.jpeg), result.to_dict()
