"""``darkroom run [PATH…]``: the main job, end to end on this machine.

Starts the local Kafka broker (unless KAFKA_BOOTSTRAP_SERVERS names a
cluster), creates the topics, starts the four services as separate processes,
uploads the photos given (default: a sample of ../shared/corpus), follows every
job until it is cataloged, prints a summary, writes an HTML contact sheet into
the data directory and stops everything it started.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from darkroom_cli.commands import dev_tools_missing

if TYPE_CHECKING:
    from darkroom_cli.tracker import JobEnd
    from darkroom_schemas import UploadedV1

SAMPLE = (
    "raw/cr2_canon_img5952.cr2",
    "raw/dng_lg-h815_skia_sample_1mp.dng",
    "raw/kdc_kodak_dc50.kdc",
    *(f"orientation/{side}_{n}.jpg" for side in ("Landscape", "Portrait") for n in range(9)),
    "jpeg/exif_gps_tahoe.jpg",
    "jpeg/exif_lens_gps_iphone6.jpg",
    "jpeg/exif_canon_40d_makernote.jpg",
    "large/canon_5d3_22mp.jpg",
    "formats/png_rgba_alpha.png",
    "formats/cmyk_swop_icc.jpg",
    "formats/webp_animated.webp",
    "formats/heic_iphone.heic",
    "formats/avif_10bit_hdr_p3_nclx.avif",
    "formats/icc_displayp3_ultrahdr_pixel6pro.jpg",
    "formats/jxl_8bit_srgb.jxl",
    "formats/cmyk_no_icc.jpg",
    "raw/metadata_only/exiftool_CanonRaw.cr3",
    "raw/metadata_only/exiftool_Panasonic.rw2",
    "bad/truncated.jpg",
    "bad/html_renamed.jpg",
    "bad/zero_bytes.jpg",
    "bad/jpeg_with_nef_extension.nef",
)
"""The default sample: RAW, every orientation, EXIF-rich, phone formats (HEIC, HDR AVIF,
Ultra HDR JPEG, JPEG XL), odd formats and bad files."""

IMAGE_SUFFIXES = {
    ".jpg", ".jpeg", ".jpe", ".png", ".webp", ".gif", ".tif", ".tiff", ".heic", ".heif",
    ".avif", ".jxl", ".cr2", ".cr3", ".nef", ".nrw", ".arw", ".dng", ".raf", ".orf", ".rw2",
    ".pef", ".srw", ".kdc",
}  # fmt: skip


def register(subparsers: Any) -> None:
    """Add ``run``."""
    p = subparsers.add_parser(
        "run",
        help="run the whole pipeline locally on photos and print a summary",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "paths", nargs="*", type=Path, help="files or folders (default: a corpus sample)"
    )
    p.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="objects, state, logs, contact sheet (default .darkroom/run)",
    )
    p.add_argument("--gallery", default=None, help="gallery id (default: run-<UTC timestamp>)")
    p.add_argument(
        "--profile", default=None, help="variant profile (default: the services' default)"
    )
    p.add_argument("--timeout", type=float, default=900.0, help="seconds to wait for every job")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.add_argument("--corpus", type=Path, default=None, help="corpus folder for the default sample")
    p.set_defaults(func=_run)


def default_corpus() -> Path:
    """Return the test corpus folder: $DARKROOM_CORPUS or ../shared/corpus beside the checkout."""
    if env := os.environ.get("DARKROOM_CORPUS"):
        return Path(env)
    from darkroom_dev.local.jars import repo_root

    return repo_root().parent / "shared" / "corpus"


def collect(paths: Iterable[Path]) -> list[Path]:
    """Expand folders (recursively, image suffixes only) and keep files as given, sorted per folder."""
    out: list[Path] = []
    for p in paths:
        if p.is_dir():
            out += sorted(
                f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES
            )
        elif p.is_file():
            out.append(p)
        else:
            raise FileNotFoundError(f"no such file or folder: {p}")
    return out


def _run(args: argparse.Namespace) -> int:
    try:
        from darkroom_dev.local.jars import repo_root
    except ModuleNotFoundError as exc:
        return dev_tools_missing("darkroom run", exc)
    import asyncio

    from darkroom_common.errors import DarkroomError

    try:
        if args.paths:
            files = collect(args.paths)
        else:
            corpus = args.corpus or default_corpus()
            files = [corpus / rel for rel in SAMPLE if (corpus / rel).is_file()]
            if not files:
                print(f"darkroom run: no sample photos under {corpus}; pass PATH…", file=sys.stderr)
                return 2
    except FileNotFoundError as exc:
        print(f"darkroom run: {exc}", file=sys.stderr)
        return 2
    if not files:
        print("darkroom run: no image files found", file=sys.stderr)
        return 2
    data_dir = (args.data_dir or repo_root() / ".darkroom" / "run").absolute()
    gallery = args.gallery or "run-" + datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    try:
        return asyncio.run(_main(files, data_dir, gallery, args))
    except DarkroomError as exc:
        print(f"darkroom run: {exc.message}", file=sys.stderr)
        return 1


def _log(args: argparse.Namespace, text: str) -> None:
    print(text, file=sys.stderr if args.json else sys.stdout, flush=True)


async def _main(files: list[Path], data_dir: Path, gallery: str, args: argparse.Namespace) -> int:
    import asyncio

    from darkroom_cli.contact_sheet import write_contact_sheet
    from darkroom_cli.tracker import JobTracker
    from darkroom_common.settings import DarkroomSettings, load_settings
    from darkroom_common.storage import StorageSettings, open_store
    from darkroom_common.topics import create_topics, settings_layouts
    from darkroom_common.uploads import UploadPublisher, upload_file
    from darkroom_dev.local.kafka import LocalKafka, default_state_dir
    from darkroom_dev.local.services import ServiceGroup

    external = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    broker = None if external else LocalKafka(default_state_dir())
    if broker is not None and broker.pid() is not None:
        broker = None  # already running (make kafka-up): use it, leave it running
        bootstrap = LocalKafka(default_state_dir()).start()
    elif broker is not None:
        _log(args, f"starting the local Kafka broker ({broker.state_dir}) …")
        bootstrap = await asyncio.to_thread(broker.start)
    else:
        bootstrap = str(external)
    settings = load_settings(
        DarkroomSettings,
        kafka_bootstrap_servers=bootstrap,
        data_dir=data_dir / "state",
    )
    storage = settings.storage
    if storage.backend == "local" and not os.environ.get("DARKROOM_STORAGE__ROOT"):
        storage = StorageSettings(backend="local", root=data_dir / "objects")
    created = await create_topics(
        bootstrap,
        settings_layouts(settings),
    )
    _log(
        args,
        f"topics: {sum(v == 'created' for v in created.values())} created, {len(created)} in all",
    )
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "DARKROOM_DATA_DIR": str(settings.data_dir),
        "DARKROOM_STORAGE__BACKEND": storage.backend,
        "DARKROOM_STORAGE__ROOT": str(storage.root),
        "DARKROOM_LOG_LEVEL": os.environ.get("DARKROOM_LOG_LEVEL", "INFO"),
    }
    group = ServiceGroup(env, data_dir / "logs")
    group.start_all()
    _log(
        args,
        f"services started: {', '.join(p.name for p in group.processes)} (logs in {group.log_dir})",
    )
    tracker = JobTracker(bootstrap, topic_prefix=settings.topic_prefix)
    store = open_store(storage)
    try:
        await tracker.start()
        uploads: dict[str, tuple[Path, UploadedV1]] = {}
        started: dict[str, float] = {}
        async with UploadPublisher(bootstrap, topic_prefix=settings.topic_prefix) as publisher:
            for path in files:
                event = await upload_file(
                    store, publisher, path, gallery_id=gallery, profile=args.profile, source="cli"
                )
                uploads[event.job_id] = (path, event)
                started[event.job_id] = time.monotonic()
        _log(
            args, f"uploaded {len(uploads)} files to gallery {gallery}; waiting for the pipeline …"
        )

        done = 0

        def on_end(end: JobEnd) -> None:
            nonlocal done
            done += 1
            name = uploads[end.job_id][0].name
            what = end.status + (f" ({end.reason})" if end.reason else "")
            _log(args, f"  [{done:>3}/{len(uploads)}] {name:<40} {what}")

        def should_abort() -> str | None:
            dead = group.exited()
            if dead:
                p = dead[0]
                return f"service {p.name} exited with status {p.process.returncode}:\n{p.tail()}"
            return None

        ends = await tracker.wait(
            uploads,
            timeout_s=args.timeout,
            started=started,
            on_end=on_end,
            should_abort=should_abort,
        )
        rows = summary_rows(uploads, ends)
        sheet = await write_contact_sheet(
            data_dir / "contact-sheet.html", gallery, rows, store, storage
        )
    finally:
        await tracker.stop()
        await store.close()
        group.stop()
        if broker is not None:
            await asyncio.to_thread(broker.stop)
    if args.json:
        print(
            json.dumps({"gallery_id": gallery, "data_dir": str(data_dir), "jobs": rows}, indent=2)
        )
    else:
        print_table(rows)
        print(f"\ncontact sheet: {sheet}")
    missing = [r for r in rows if r["status"] == "timeout"]
    return 1 if missing else 0


def summary_rows(
    uploads: dict[str, tuple[Path, UploadedV1]], ends: dict[str, JobEnd]
) -> list[dict[str, Any]]:
    """Return one JSON-ready row per upload: source file, status, reason and variants."""
    rows = []
    for job_id, (path, event) in uploads.items():
        end = ends.get(job_id)
        row: dict[str, Any] = {
            "source_file": str(path),
            "job_id": job_id,
            "image_id": event.image_id,
            "status": end.status if end else "timeout",
            "reason_code": end.reason if end else "timeout",
            "reason_message": None,
            "seconds": round(end.seconds, 2) if end and end.seconds is not None else None,
            "variants": [],
            "metadata": None,
        }
        if end and end.cataloged:
            c = end.cataloged
            row["reason_message"] = c.reason_message
            row["variants"] = [
                {
                    "name": v.name,
                    "key": v.object_key,
                    "width": v.width,
                    "height": v.height,
                    "bytes": v.bytes,
                }
                for v in c.variants
            ]
            row["metadata"] = c.metadata.model_dump(mode="json") if c.metadata else None
            row["thumbhash"] = c.thumbhash
            row["dominant_colour"] = c.dominant_colour
        elif end and end.dead_letter:
            row["reason_message"] = end.dead_letter.error_message
        rows.append(row)
    return rows


def print_table(rows: list[dict[str, Any]]) -> None:
    """Print the summary as an aligned text table."""
    header = ("file", "status / reason", "variants", "seconds")
    lines = [
        (
            Path(r["source_file"]).name,
            r["status"] + (f": {r['reason_code']}" if r["reason_code"] else ""),
            str(len(r["variants"])),
            "" if r["seconds"] is None else f"{r['seconds']:.1f}",
        )
        for r in rows
    ]
    widths = [max(len(h), *(len(x[i]) for x in lines)) for i, h in enumerate(header)]
    print()
    print("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)))
    print("  ".join("-" * w for w in widths))
    for line in lines:
        print("  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)))
    counts: dict[str, int] = {}
    for r in rows:
        counts[r["status"]] = counts.get(r["status"], 0) + 1
    print("\n" + ", ".join(f"{n} {s}" for s, n in sorted(counts.items())))
