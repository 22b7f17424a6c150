"""``darkroom render``: render a profile's variants of local files with the engine.

Writes ``OUT/<stem>/<variant>.<ext>`` for every file and variant. Exit status 0
when every variant of every file rendered, 1 when any failed (each failure is
reported with its reason code), 2 for a bad profile.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any


def register(subparsers: Any) -> None:
    """Add the ``render`` subcommand to the ``darkroom`` parser."""
    parser = subparsers.add_parser(
        "render",
        help="render variants of local image files",
        description="Render every variant of a profile for each FILE into OUT/<stem>/<variant>.<ext>.",
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
    # default None: the engine's DEFAULT_MAX_PIXELS, read when the command runs
    parser.add_argument("--max-pixels", type=int, default=None, help="refuse larger sources")
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Render ``args.files``; return 0 if all variants rendered, 1 if any failed, 2 on bad profile."""
    from darkroom_imaging.profiles import ProfileError, load_profile
    from darkroom_imaging.render import DEFAULT_MAX_PIXELS, RenderContext, RenderedVariant, render

    try:
        profile = load_profile(args.profile)
    except ProfileError as exc:
        print(f"darkroom render: {exc}", file=sys.stderr)
        return 2
    max_pixels = DEFAULT_MAX_PIXELS if args.max_pixels is None else args.max_pixels
    context = RenderContext(artist=args.artist, copyright=args.copyright, max_pixels=max_pixels)
    report: list[dict[str, Any]] = []
    ok = True
    for path in args.files:
        result = render(path, profile.specs, context=context)
        folder = args.out / path.stem
        entry: dict[str, Any] = {"file": str(path), "variants": []}
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
        report.append(entry)
    if args.json:
        print(json.dumps({"profile": profile.name, "files": report}, indent=2))
    return 0 if ok else 1
