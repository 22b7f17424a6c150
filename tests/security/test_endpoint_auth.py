"""Every HTTP endpoint of every service needs the right API key.

Routes are enumerated from the apps themselves, not listed by hand: the upload API's
FastAPI ``app.routes``, and each Faust worker's aiohttp router (the app the service's
``__main__`` builds, with its web server initialised, Faust's built-in pages included).
Each route is then called on the running stack (:mod:`tests.security.conftest`). A new
endpoint fails :func:`test_every_route_is_open_by_choice_or_has_a_scope` until it is
classified here, and :func:`test_protected_routes_refuse_missing_wrong_and_unscoped_keys`
until it enforces the scope.

Open without a key (:data:`OPEN`), and why:

* ``/healthz``, ``/readyz``: orchestrator probes carry no credentials.
* ``/metrics``: Prometheus scrapes the workers without credentials
  (``deploy/prometheus/prometheus-k8s.yml``), as is usual inside a cluster; keep the web
  ports off the internet. The page holds counters labelled by service, stage, topic,
  partition, consumer group, status and reason code — never a gallery, image or job id,
  which :func:`test_open_pages_answer_without_a_key_and_name_no_gallery_or_image` checks
  after a real upload.
* ``/healthz`` and ``/readyz`` on every worker: the same probes, served by the stage runtime.
* The upload API's ``/openapi.json``, ``/docs``, ``/docs/oauth2-redirect`` and ``/redoc``:
  the API's own description, the same for everyone.

Everything else, for each method (HEAD runs the GET handler on a worker; on a POST-only
route it is 405 before any handler): no ``Authorization`` → 401 ``unauthenticated``
with ``WWW-Authenticate: Bearer``; a malformed header or an unknown key → 401; a valid key
without the route's scope (:data:`SCOPE`) → 403 ``forbidden``; a key with it (or admin) →
neither. The gallery page answers 401/403 as HTML naming the reason.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from darkroom_catalog.app import build_app as build_catalog
from darkroom_catalog.settings import CatalogSettings
from darkroom_ingest.app import build_app as build_ingest
from darkroom_ingest.settings import IngestSettings
from darkroom_raw_provider.app import build_app as build_raw_provider
from darkroom_raw_provider.settings import RawProviderSettings
from darkroom_runtime import StageApp
from darkroom_variants.app import build_app as build_variants
from darkroom_variants.settings import VariantsSettings

from .conftest import CORPUS, Stack, new_secret

pytestmark = [pytest.mark.e2e, pytest.mark.kafka, pytest.mark.s3, pytest.mark.slow]

Route = tuple[str, str, str]
"""``(service, method, path template)``; service ``upload-api`` or a pipeline stage."""

WORKERS = ("ingest", "raw-provider", "variants", "catalog")
OPEN: set[tuple[str, str]] = {
    *((w, "/metrics") for w in WORKERS),
    *((w, "/healthz") for w in WORKERS),
    *((w, "/readyz") for w in WORKERS),
    ("upload-api", "/healthz"),
    ("upload-api", "/readyz"),
    ("upload-api", "/openapi.json"),
    ("upload-api", "/docs"),
    ("upload-api", "/docs/oauth2-redirect"),
    ("upload-api", "/redoc"),
}
"""``(service, path)`` answered without a key, every method (see the module docstring)."""

SCOPE: dict[Route, str] = {
    ("upload-api", "POST", "/v1/galleries/{gallery_id}/uploads"): "upload",
    ("upload-api", "POST", "/v1/galleries/{gallery_id}/upload-urls"): "upload",
    ("upload-api", "POST", "/v1/uploads/{upload_id}/complete"): "upload",
    ("catalog", "GET", "/v1/jobs/{job_id}"): "read",
    ("catalog", "GET", "/v1/jobs/{job_id}/events"): "read",
    ("catalog", "POST", "/v1/jobs/{job_id}/retry"): "admin",
    ("catalog", "POST", "/v1/jobs/{job_id}/start"): "admin",
    ("catalog", "GET", "/v1/images/{image_id}"): "read",
    ("catalog", "DELETE", "/v1/images/{image_id}"): "admin",
    ("catalog", "GET", "/v1/galleries/{gallery_id}/images"): "read",
    ("catalog", "GET", "/v1/galleries/{gallery_id}/settings"): "read",
    ("catalog", "PUT", "/v1/galleries/{gallery_id}/settings"): "admin",
    ("catalog", "GET", "/v1/objects/{key}"): "read",
    ("catalog", "GET", "/galleries/{gallery_id}"): "read",
    ("catalog", "POST", "/galleries/{gallery_id}/jobs/{job_id}/retry"): "admin",
}
"""The scope each protected route needs (HEAD follows the path's GET)."""

PARAMS = {
    "gallery_id": "sec-auth-g",
    "job_id": "sec-auth-nope",
    "image_id": "sec-auth-nope",
    "upload_id": "sec-auth-nope",
    "key": "variants/sec-auth-g/sec-auth-nope/thumb-0.jpg",
}
HEADERS = {"X-Darkroom-Page": "1"}
"""Sent with every call: the gallery page's retry action needs it besides the admin scope."""


def _fastapi_routes(app: FastAPI) -> set[Route]:
    return {
        ("upload-api", method, route.path)
        for route in app.routes
        for method in getattr(route, "methods", None) or ()
    }


def _worker_routes(service: str, app: StageApp) -> set[Route]:
    return {
        (service, r.method, r.resource.canonical)
        for r in app.web.router.routes()
        if r.resource is not None
    }


@pytest.fixture(scope="module")
def routes(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> set[Route]:
    """Every (service, method, path) of the upload API and of the four workers."""
    common: dict[str, Any] = {
        "kafka_bootstrap_servers": stack.bootstrap,
        "topic_prefix": stack.prefix,
        "data_dir": tmp_path_factory.mktemp("apps"),
        "storage": stack.storage,
    }
    apps = {
        "ingest": build_ingest(IngestSettings(**common)),
        "raw-provider": build_raw_provider(RawProviderSettings(**common)),
        "variants": build_variants(VariantsSettings(**common)),
        "catalog": build_catalog(CatalogSettings(**common), store="memory"),
    }
    found = _fastapi_routes(stack.upload_app)
    for service, app in apps.items():
        found |= _worker_routes(service, app)
    return found


def _url(stack: Stack, service: str, path: str) -> str:
    base = stack.upload_url if service == "upload-api" else stack.base(service)
    return base + re.sub(r"\{(\w+)(:[^}]*)?\}", lambda m: PARAMS[m[1]], path)


def _call(stack: Stack, route: Route, authorization: str | None) -> httpx.Response:
    service, method, path = route
    headers = dict(HEADERS)
    if authorization is not None:
        headers["Authorization"] = authorization
    return stack.http.request(method, _url(stack, service, path), headers=headers)


def _protected(routes: set[Route]) -> list[Route]:
    return sorted(r for r in routes if (r[0], r[2]) not in OPEN)


def _required(route: Route, routes: set[Route]) -> str | None:
    """The scope ``route`` needs; ``None`` for a HEAD whose path has no GET (405 first)."""
    service, method, path = route
    if method == "HEAD":
        method = "GET"
        if (service, method, path) not in routes:
            return None
    return SCOPE[(service, method, path)]


def _reason(response: httpx.Response) -> str:
    if response.headers.get("content-type", "").startswith("text/html"):
        match = re.search(r"\b(unauthenticated|forbidden)\b", response.text)
        return match[1] if match else response.text[:200]
    return str(response.json()["reason"])


def test_every_route_is_open_by_choice_or_has_a_scope(routes):
    services = Counter(service for service, _, _ in routes)
    print(f"\nroutes enumerated: {len(routes)} {dict(sorted(services.items()))}")
    assert set(services) == {"upload-api", *WORKERS}
    open_paths = {(service, path) for service, _, path in routes}
    assert not OPEN - open_paths, f"stale entries in OPEN: {sorted(OPEN - open_paths)}"
    unclassified = {
        r for r in _protected(routes) if r[1] != "HEAD" and (r[0], r[1], r[2]) not in SCOPE
    }
    assert not unclassified, f"routes with no scope in SCOPE: {sorted(unclassified)}"
    stale = set(SCOPE) - routes
    assert not stale, f"stale entries in SCOPE: {sorted(stale)}"


def test_protected_routes_refuse_missing_wrong_and_unscoped_keys(stack, routes):
    checked = Counter[str]()
    for route in _protected(routes):
        _, method, path = route
        required = _required(route, routes)
        if required is None:
            assert _call(stack, route, None).status_code == 405, route
            checked["HEAD without GET: 405"] += 1
            continue
        bad = (
            None,
            "Basic dXNlcjpwYXNzd29yZA==",
            "Bearer",
            f"Bearer {new_secret()}",
            stack.keys["read"],  # the key without "Bearer "
        )
        for authorization in bad:
            r = _call(stack, route, authorization)
            assert r.status_code == 401, (route, authorization, r.text[:300])
            if method != "HEAD":
                assert _reason(r) == "unauthenticated", (route, r.text[:300])
            if path != "/galleries/{gallery_id}":
                assert r.headers["www-authenticate"].startswith("Bearer"), route
            checked["401"] += 1
        for scope in ("none", "read", "upload", "admin"):
            r = _call(stack, route, f"Bearer {stack.keys[scope]}")
            if scope in (required, "admin"):
                assert r.status_code not in (401, 403), (route, scope, r.status_code, r.text[:300])
                checked["allowed"] += 1
            else:
                assert r.status_code == 403, (route, scope, r.status_code, r.text[:300])
                if method != "HEAD":
                    assert _reason(r) == "forbidden", (route, scope, r.text[:300])
                checked["403"] += 1
    print(f"\nprotected routes: {len(_protected(routes))}; answers checked: {dict(checked)}")
    assert checked["401"]
    assert checked["403"]
    assert checked["allowed"]


def test_the_gallery_page_takes_its_key_from_the_query_or_cookie_too(stack):
    page = f"{stack.catalog}/galleries/{PARAMS['gallery_id']}"
    assert stack.http.get(page, params={"key": stack.keys["read"]}).status_code == 303
    assert stack.http.get(page, params={"key": stack.keys["upload"]}).status_code == 403
    assert stack.http.get(page, params={"key": new_secret()}).status_code == 401
    cookie = {"Cookie": f"darkroom_key={stack.keys['read']}"}
    assert stack.http.get(page, headers=cookie).status_code == 200
    obj = f"{stack.catalog}/v1/objects/{PARAMS['key']}"
    wrong = {"Cookie": f"darkroom_key={new_secret()}"}
    assert stack.http.get(obj, headers=wrong).status_code == 401
    assert stack.http.get(obj, headers=cookie).status_code == 404  # authorized, absent


def test_open_pages_answer_without_a_key_and_name_no_gallery_or_image(stack, routes):
    gallery = f"sec-metrics-{new_secret()[:8].lower().replace('_', 'x').replace('-', 'y')}"
    body = stack.upload(CORPUS / "jpeg" / "exif_canon_40d_makernote.jpg", gallery)
    assert stack.cataloged(body["job_id"]).status == "complete"
    pages = 0
    for service, path in sorted(OPEN):
        url = _url(stack, service, path)
        r = stack.http.get(url)
        assert r.status_code == 200, (service, path, r.status_code, r.text[:300])
        for value in (gallery, body["image_id"], body["job_id"]):
            assert value not in r.text, (service, path, value)
        pages += 1
    print(f"\nopen pages answered 200 without a key and named no gallery/image/job: {pages}")
    assert pages == len(OPEN)


def test_the_stack_exposes_no_table_or_router_pages(stack, routes):
    """Faust's /table pages once served job records (gallery, file names, EXIF) to anyone."""
    assert not [r for r in routes if r[2].startswith(("/table", "/router"))]
    for service in WORKERS:
        for path in ("/table/", "/table/jobs/x/", "/router/", "/router/jobs/x/"):
            assert stack.http.get(stack.base(service) + path).status_code == 404
