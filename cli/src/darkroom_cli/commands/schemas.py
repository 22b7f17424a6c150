"""``darkroom schemas export|check``: keep the committed ``.avsc`` files in step with the models."""

from __future__ import annotations

import argparse
import sys
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from darkroom_schemas import WireRecord


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``schemas export`` and ``schemas check``."""
    parser = subparsers.add_parser("schemas", help="export or check the committed Avro schemas")
    sub = parser.add_subparsers(dest="action", required=True)
    for action, helptext in (
        ("export", "write <event>.v<N>.avsc for every model (new versions only, unless --force)"),
        ("check", "exit 1 if any committed .avsc differs from its model"),
    ):
        p = sub.add_parser(action, help=helptext)
        # default None: the committed folder inside darkroom_schemas, found when the command runs
        p.add_argument("--dir", type=Path, default=None, help="folder of the .avsc files")
        p.add_argument("--force", action="store_true", help="overwrite existing files (export)")
        p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from darkroom_schemas import EVENT_MODELS, DeadLetterV1, GallerySettingsV1
    from darkroom_schemas.avro_schema import AVSC_PACKAGE, render_avsc

    folder = args.dir or Path(str(resources.files(AVSC_PACKAGE)))
    stale = []
    models: list[type[WireRecord]] = [*EVENT_MODELS, DeadLetterV1, GallerySettingsV1]
    for model in models:
        path = folder / f"{model.schema_name()}.avsc"
        text = render_avsc(model)
        current = path.read_text("utf-8") if path.exists() else None
        if current == text:
            continue
        if args.action == "export" and (current is None or args.force):
            path.write_text(text, "utf-8")
            print(f"wrote {path}")
        else:
            stale.append(path.name)
    if stale:
        print(
            f"out of date: {', '.join(stale)}. A published schema never changes: add a new "
            "version model (e.g. UploadedV2) instead, or use --force before it is published.",
            file=sys.stderr,
        )
        return 1
    return 0
