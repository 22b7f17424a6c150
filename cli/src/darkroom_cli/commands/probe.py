"""``darkroom probe``, ``darkroom exif`` and ``darkroom develop``: the imaging engine by hand.

* ``probe FILE…``: one JSON line per file, ``{"path", "ok": true, ...probe}`` or
  ``{"path", "ok": false, "reason", "message"}``; exit 0 when every file was probed,
  whatever the verdicts; 2 when a file does not exist.
* ``exif FILE``: the camera metadata as one JSON object.
* ``develop RAW --out FILE.jpg [--policy develop|embedded-preview] [--min-long-edge N]``:
  writes the JPEG master and prints a JSON summary; exit 1 when development failed.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any


def register(subparsers: Any) -> None:
    """Add the ``probe``, ``exif`` and ``develop`` subcommands."""
    p = subparsers.add_parser("probe", help="validate image files from their headers")
    p.add_argument("files", nargs="+", type=Path, metavar="FILE")
    # default None: the engine's ProbeLimits, read when the command runs
    p.add_argument("--max-pixels", type=int, default=None)
    p.add_argument("--max-bytes", type=int, default=None)
    p.set_defaults(func=run_probe)

    e = subparsers.add_parser("exif", help="print the camera metadata of a file as JSON")
    e.add_argument("file", type=Path, metavar="FILE")
    e.set_defaults(func=run_exif)

    d = subparsers.add_parser("develop", help="develop a RAW file into a JPEG master")
    d.add_argument("file", type=Path, metavar="RAW")
    d.add_argument("--out", type=Path, required=True, metavar="FILE.jpg")
    d.add_argument("--policy", choices=["develop", "embedded-preview"], default="develop")
    d.add_argument("--min-long-edge", type=int, default=None, metavar="PX")
    d.add_argument("--max-seconds", type=float, default=120.0)
    d.set_defaults(func=run_develop)


def _missing(paths: list[Path]) -> int:
    missing = [p for p in paths if not p.is_file()]
    for p in missing:
        print(f"darkroom: no such file: {p}", file=sys.stderr)
    return 2 if missing else 0


def run_probe(args: argparse.Namespace) -> int:
    """Probe every file; one JSON line each."""
    from darkroom_imaging.outcomes import Failure
    from darkroom_imaging.probe import ProbeLimits, probe

    if status := _missing(args.files):
        return status
    given = {"max_pixels": args.max_pixels, "max_bytes": args.max_bytes}
    limits = ProbeLimits(**{k: v for k, v in given.items() if v is not None})
    for path in args.files:
        result = probe(path, limits=limits)
        line: dict[str, Any] = {"path": str(path)}
        if isinstance(result, Failure):
            line.update(ok=False, **result.as_dict())
        else:
            line.update(ok=True, **result.to_dict())
        print(json.dumps(line), flush=True)
    return 0


def run_exif(args: argparse.Namespace) -> int:
    """Print the metadata of one file."""
    from darkroom_imaging.metadata import read_metadata

    if status := _missing([args.file]):
        return status
    print(json.dumps({"path": str(args.file), **read_metadata(args.file).to_dict()}))
    return 0


def run_develop(args: argparse.Namespace) -> int:
    """Develop one RAW file into ``--out``, with the RAW's capture EXIF (no GPS).

    The file is probed first (a cut or stripped RAW gets the probe's reason); the master
    carries :data:`darkroom_imaging.raw.CAPTURE_TAGS` copied by ExifTool, or none (with a
    logged warning) when ExifTool is unavailable.
    """
    from darkroom_imaging.outcomes import Failure
    from darkroom_imaging.raw import copy_capture_metadata, develop

    if status := _missing([args.file]):
        return status
    result = develop(
        args.file,
        policy=args.policy,
        min_long_edge=args.min_long_edge,
        max_seconds=args.max_seconds,
    )
    if isinstance(result, Failure):
        print(json.dumps({"path": str(args.file), "ok": False, **result.as_dict()}))
        return 1
    args.out.write_bytes(copy_capture_metadata(args.file, result.jpeg))
    summary = {"path": str(args.file), "ok": True, "out": str(args.out), **result.to_dict()}
    print(json.dumps(summary))
    return 0
