"""The server-rendered gallery page: one HTML document, no framework, everything escaped.

Input is a page of ``GET /v1/galleries/{id}/images`` (see
:func:`darkroom_catalog.views.gallery_page`). Each image shows its ``thumb``
variant (or the smallest one) on its dominant colour as placeholder
background; its metadata opens on click (``<details>``); a failed job shows its
reason code and message, and for an admin a Retry button that POSTs to
``/galleries/{gallery_id}/jobs/{job_id}/retry`` with the page's cookie.
"""

from __future__ import annotations

import re
from html import escape
from typing import Any
from urllib.parse import quote

_COLOUR = re.compile(r"^#[0-9a-fA-F]{6}$")

_SCRIPT = """
document.querySelectorAll('button.retry').forEach(function (b) {
  b.addEventListener('click', function () {
    b.disabled = true;
    fetch(b.dataset.action, {method: 'POST', credentials: 'same-origin',
                             headers: {'X-Darkroom-Page': '1'}})
      .then(function (r) { return r.json().then(function (j) { return [r.status, j]; }); })
      .then(function (res) {
        var fig = b.closest('figure');
        var st = fig.querySelector('.status');
        if (res[0] === 202) { st.textContent = 'queued'; fig.dataset.status = 'queued'; }
        else { st.textContent = 'retry refused: ' + (res[1].reason || res[0]);
               b.disabled = false; }
      });
  });
});
"""

_STYLE = """
body{font-family:system-ui,sans-serif;margin:1rem;background:#fafafa}
main{display:flex;flex-wrap:wrap;gap:1rem}
figure{margin:0;width:240px;background:#fff;border:1px solid #ddd;padding:.5rem}
.thumb{width:240px;height:180px;display:flex;align-items:center;justify-content:center}
.thumb img{max-width:240px;max-height:180px}
.failed .status{color:#b00020}
.reason{color:#b00020;font-size:.9em}
dl{font-size:.85em}
"""


def _thumb(variants: dict[str, Any]) -> dict[str, Any] | None:
    if "thumb" in variants:
        return variants["thumb"]
    if not variants:
        return None
    return min(variants.values(), key=lambda v: (v.get("width") or 0) * (v.get("height") or 0))


def _metadata(metadata: dict[str, Any] | None) -> str:
    if not metadata:
        return "<p>no metadata</p>"
    rows = "".join(
        f"<dt>{escape(str(k))}</dt><dd>{escape(str(v))}</dd>"
        for k, v in metadata.items()
        if v not in (None, "", [], {})
    )
    return f"<dl>{rows}</dl>"


def _figure(gallery_id: str, item: dict[str, Any], admin: bool) -> str:
    status = str(item.get("status") or "unknown")
    colour = item.get("dominant_colour") or ""
    background = f' style="background:{colour}"' if _COLOUR.match(colour) else ""
    thumb = _thumb(item.get("variants") or {})
    name = escape(str(item.get("filename") or item["image_id"]))
    img = (
        f'<img src="{escape(thumb["url"])}" alt="{name}" loading="lazy"'
        f' width="{int(thumb["width"])}" height="{int(thumb["height"])}">'
        if thumb
        else ""
    )
    parts = [
        f'<figure class="{escape(status)}" data-image-id="{escape(item["image_id"])}"'
        f' data-status="{escape(status)}">',
        f'<div class="thumb"{background}>{img}</div>',
        f"<figcaption><strong>{name}</strong> · <span class=status>{escape(status)}</span>",
    ]
    error = item.get("error")
    if error:
        message = f": {escape(str(error['message']))}" if error.get("message") else ""
        parts.append(
            f'<div class="reason"><code>{escape(str(error["code"]))}</code>{message}</div>'
        )
    if admin and status == "failed":
        action = (
            f"/galleries/{quote(gallery_id, safe='')}/jobs/{quote(item['job_id'], safe='')}/retry"
        )
        parts.append(
            f'<button type="button" class="retry" data-action="{escape(action)}">Retry</button>'
        )
    parts.append(f"<details><summary>Metadata</summary>{_metadata(item.get('metadata'))}</details>")
    parts.append("</figcaption></figure>")
    return "".join(parts)


def render_gallery(gallery_id: str, page: dict[str, Any], *, admin: bool, nonce: str = "") -> str:
    """Return the gallery page's HTML for one page of ``GET /v1/galleries/{id}/images``.

    Args:
        gallery_id: the gallery shown (escaped like every other value).
        page: the API's JSON page (``images``, ``total``, ``next_cursor``).
        admin: whether to offer Retry buttons on failed jobs.
        nonce: the Content-Security-Policy nonce of the page's one script.
    """
    figures = "".join(_figure(gallery_id, item, admin) for item in page.get("images", []))
    title = escape(gallery_id)
    more = ""
    if page.get("next_cursor"):
        more = f'<p><a href="?cursor={quote(str(page["next_cursor"]))}">more</a></p>'
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        '<meta name="referrer" content="no-referrer">'
        f"<title>Gallery {title}</title><style>{_STYLE}</style></head><body>"
        f"<h1>Gallery {title}</h1><p>{int(page.get('total', 0))} item(s)</p>"
        f"<main>{figures}</main>{more}"
        f'<script nonce="{escape(nonce)}">{_SCRIPT}</script></body></html>'
    )
