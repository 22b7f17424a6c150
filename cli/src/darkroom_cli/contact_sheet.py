"""An HTML contact sheet of a run: thumbnails, key EXIF and each job's status."""

from __future__ import annotations

import html
import os
from pathlib import Path
from typing import Any

from darkroom_common.storage import FilesystemStore, ObjectStore, StorageSettings


async def _image_url(
    key: str, store: ObjectStore, storage: StorageSettings, sheet_dir: Path
) -> str:
    if isinstance(store, FilesystemStore):
        return Path(os.path.relpath(store.local_path(key), sheet_dir)).as_posix()
    if storage.public_base_url:
        return f"{storage.public_base_url.rstrip('/')}/{key}"
    return await store.presign_get(key, expires_s=7 * 24 * 3600)


def _exif_line(meta: dict[str, Any] | None) -> str:
    if not meta:
        return ""
    camera = " ".join(x for x in (meta.get("make"), meta.get("model")) if x)
    parts = [
        camera,
        meta.get("lens_model") or "",
        f"ƒ/{meta['f_number']:g}" if meta.get("f_number") else "",
        f"{meta['exposure_time']} s" if meta.get("exposure_time") else "",
        f"ISO {meta['iso']}" if meta.get("iso") else "",
        f"{meta['focal_length']:g} mm" if meta.get("focal_length") else "",
        (meta.get("date_time_original") or "")[:19].replace("T", " "),
    ]
    return " · ".join(p for p in parts if p)


async def write_contact_sheet(
    path: Path,
    gallery_id: str,
    rows: list[dict[str, Any]],
    store: ObjectStore,
    storage: StorageSettings,
) -> Path:
    """Write ``path`` (HTML) with one card per job and return it.

    Local stores are linked by relative paths, S3 by the public base URL or
    presigned GET URLs (valid 7 days). GPS is never shown.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    cards = []
    for r in rows:
        thumb = next((v for v in r["variants"] if v["name"] == "thumb"), None)
        colour = r.get("dominant_colour") or "#ddd"
        if thumb is not None:
            url = await _image_url(thumb["key"], store, storage, path.parent)
            img = (
                f'<img src="{html.escape(url)}" width="{thumb["width"]}" height="{thumb["height"]}" '
                f'alt="{html.escape(Path(r["source_file"]).name)}" style="background:{html.escape(colour)}">'
            )
        else:
            img = '<div class="none">no image</div>'
        status = r["status"] + (f": {r['reason_code']}" if r["status"] != "complete" else "")
        detail = html.escape(r.get("reason_message") or _exif_line(r.get("metadata")))
        cards.append(
            f'<figure class="{html.escape(r["status"])}">{img}<figcaption>'
            f"<b>{html.escape(Path(r['source_file']).name)}</b>"
            f'<span class="status">{html.escape(status)}</span><small>{detail}</small>'
            f"</figcaption></figure>"
        )
    done = sum(r["status"] == "complete" for r in rows)
    path.write_text(
        f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Darkroom · {html.escape(gallery_id)}</title>
<style>
body{{font:14px system-ui,sans-serif;margin:2rem;background:#fafafa;color:#222}}
main{{display:grid;grid-template-columns:repeat(auto-fill,minmax(240px,1fr));gap:1rem}}
figure{{margin:0;background:#fff;border-radius:6px;padding:.5rem;box-shadow:0 1px 3px #0002}}
figure img{{width:100%;height:auto;aspect-ratio:1;object-fit:cover;display:block;border-radius:4px}}
figure .none{{aspect-ratio:1;display:grid;place-items:center;background:#eee;color:#999}}
figcaption{{display:grid;gap:.2rem;margin-top:.4rem;overflow-wrap:anywhere}}
.status{{font-weight:600}} .complete .status{{color:#17803d}} figure:not(.complete) .status{{color:#b42318}}
small{{color:#666}}
</style></head><body>
<h1>Gallery {html.escape(gallery_id)}</h1>
<p>{done} of {len(rows)} jobs complete.</p>
<main>
{chr(10).join(cards)}
</main></body></html>
""",
        encoding="utf-8",
    )
    return path
