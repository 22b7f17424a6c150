"""No secret appears in a log line, an error message, an event or an HTTP answer.

The stack (:mod:`tests.security.conftest`) runs with real, random secrets: API keys, the
S3 secret access key, the RAW provider's API key and the upload-id signing secret. This
test drives succeeding and failing paths, gathers every text they produced, and searches
it for each secret — and for its first 8 characters, which would betray a truncated one.
Two wrong secrets a client or operator might send (an unknown API key, a wrong S3 secret)
are searched for too.

Paths: the upload API (no key, an unknown key, a key without the scope, 422, 415, 413 from
the declared length, an upload, a presigned upload and a forged upload id); the catalog
API (an unknown key, the gallery page with ``?key=``, admin calls); the RAW provider of a
gallery set to ``imagen``, which answers 401 and echoes the key it received; an upload API
whose S3 secret is wrong (``SignatureDoesNotMatch``: 503 from ``/readyz`` and from an
upload); settings errors at start-up (three services, each with every secret set and one
bad value: exit 2 and one sentence); the repr, str and JSON of each service's settings.

Searched: this process's log records at DEBUG (message and every attribute: the upload
APIs, the S3 and Kafka clients), the four services' log files, HTTP bodies and headers
(except the ``Set-Cookie`` that hands the page's caller its own key, by design), exception
messages and reprs, the start-up runs' output, and every record of every topic of the
stack. The test's own HTTP client's records are left out: it logs the URLs it requests,
and the gallery page's ``?key=`` travels in the URL of its first request (answered by a
``303`` that drops it, see the catalog API). The S3 access key id is not searched for: it
is an identifier that SigV4 sends in the clear (``X-Amz-Credential``), not a secret.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import subprocess
import sys
import threading
import time
import traceback
from collections import Counter, defaultdict
from dataclasses import dataclass, field

import httpx
import pytest
from pydantic import SecretStr

from darkroom_catalog.settings import CatalogSettings
from darkroom_common.errors import ConfigurationError
from darkroom_common.settings import load_settings
from darkroom_common.storage import S3Store, StorageAccessDenied
from darkroom_common.topics import admin_client, read_to_end
from darkroom_ingest.api import create_api
from darkroom_ingest.settings import IngestSettings
from darkroom_ingest.testing import ServerThread
from darkroom_raw_provider.settings import RawProviderSettings
from darkroom_variants.settings import VariantsSettings

from .conftest import CORPUS, Stack, new_secret, raw_request

pytestmark = [pytest.mark.e2e, pytest.mark.kafka, pytest.mark.s3, pytest.mark.slow]

WRONG_API_KEY = new_secret()
WRONG_S3_SECRET = new_secret()


@dataclass
class Evidence:
    """Every text gathered, by where it came from."""

    texts: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))

    def add(self, where: str, *texts: str) -> None:
        """Keep ``texts`` under ``where``."""
        self.texts[where].extend(texts)

    def response(self, r: httpx.Response) -> httpx.Response:
        """Keep an HTTP answer's body and headers (not a ``Set-Cookie``); return it."""
        headers = [f"{k}: {v}" for k, v in r.headers.items() if k.lower() != "set-cookie"]
        self.add("http", r.text, *headers)
        return r

    def exception(self, exc: BaseException) -> None:
        """Keep an exception's message, repr and formatted traceback."""
        self.add("exception", str(exc), repr(exc), "".join(traceback.format_exception(exc)))

    def leaks(self, secrets: dict[str, str]) -> list[str]:
        """``"<secret name> in <where>: …context…"`` for each secret (or its first 8 chars) found."""
        found = []
        for name, value in secrets.items():
            for where, texts in self.texts.items():
                for text in texts:
                    if (at := text.find(value[:8])) >= 0:
                        context = text[max(0, at - 120) : at + 40].replace(value[:8], "<SECRET>")
                        found.append(f"{name} in {where}: …{context}…")
                        break
        return found


def _upload_api_calls(stack: Stack, seen: Evidence) -> None:
    url, up = stack.upload_url, stack.auth("upload")
    jpeg = CORPUS / "jpeg" / "exif_nikon_d70.jpg"
    uploads = f"{url}/v1/galleries/sec-secrets/uploads"
    files = {"file": ("a.jpg", jpeg.read_bytes())}
    for headers, status in (
        ({}, 401),
        ({"Authorization": f"Bearer {WRONG_API_KEY}"}, 401),
        ({"Authorization": f"Basic {WRONG_API_KEY}"}, 401),
        (stack.auth("read"), 403),
    ):
        r = stack.http.post(uploads, headers=headers, files=files)
        assert seen.response(r).status_code == status
    r = stack.http.post(f"{url}/v1/galleries/bad!id/uploads", headers=up, files=files)
    assert seen.response(r).status_code == 422
    r = stack.http.post(uploads, headers=up, files={"file": ("a.exe", b"MZ")})
    assert seen.response(r).status_code == 415
    big = {"Content-Length": str(10**10), "Content-Type": "multipart/form-data; boundary=x"}
    status, body = raw_request(url, "POST", "/v1/galleries/sec-secrets/uploads", up | big, b"")
    seen.add("http", body.decode())
    assert status == 413
    seen.add("http", str(stack.upload(jpeg, "sec-secrets")))
    grant = seen.response(
        stack.http.post(
            f"{url}/v1/galleries/sec-secrets/upload-urls", headers=up, json={"filename": "p.jpg"}
        )
    ).json()
    assert stack.http.put(grant["url"], content=jpeg.read_bytes()).status_code == 200
    r = stack.http.post(f"{url}/v1/uploads/{grant['upload_id']}/complete", headers=up)
    assert seen.response(r).status_code == 202
    forged = grant["upload_id"][:-4] + "AAAA"
    r = stack.http.post(f"{url}/v1/uploads/{forged}/complete", headers=up)
    assert seen.response(r).status_code == 404
    assert seen.response(stack.http.get(f"{url}/readyz")).status_code == 200


def _catalog_calls(stack: Stack, seen: Evidence, gallery: str) -> None:
    listing = f"{stack.catalog}/v1/galleries/{gallery}/images"
    r = stack.http.get(listing, headers={"Authorization": f"Bearer {WRONG_API_KEY}"})
    assert seen.response(r).status_code == 401
    assert seen.response(stack.http.get(listing, headers=stack.auth("upload"))).status_code == 403
    page = f"{stack.catalog}/galleries/{gallery}"
    r = seen.response(stack.http.get(page, params={"key": stack.keys["read"]}))
    assert r.status_code == 303
    assert stack.keys["read"] not in r.headers["location"]
    assert stack.keys["read"] in r.headers["set-cookie"]  # the caller's own key, as a cookie
    cookie = {"Cookie": f"darkroom_key={stack.keys['read']}"}
    assert seen.response(stack.http.get(page, headers=cookie)).status_code == 200
    assert seen.response(stack.http.get(page, params={"key": WRONG_API_KEY})).status_code == 401


def _provider_401(stack: Stack, seen: Evidence, gallery: str) -> str:
    r = stack.http.put(
        f"{stack.catalog}/v1/galleries/{gallery}/settings",
        headers=stack.auth("admin"),
        json={"processing_provider": "imagen"},
    )
    assert seen.response(r).status_code == 200
    grant = stack.upload(CORPUS / "raw" / "dng_lg-h815_skia_sample_1mp.dng", gallery)
    end = stack.cataloged(grant["job_id"])
    seen.add("events", end.model_dump_json())
    assert (end.status, end.reason_code) == ("failed", "provider_auth_failed"), end.reason_message
    assert stack.provider_key in stack.provider.keys_seen  # it was sent, and echoed back
    job = f"{stack.catalog}/v1/jobs/{grant['job_id']}"
    for _ in range(100):  # the jobs table may trail the cataloged event by a moment
        r = seen.response(stack.http.get(job, headers=stack.auth("read")))
        if r.json()["status"] == "failed":
            break
        time.sleep(0.2)
    r = stack.http.post(f"{job}/retry", headers=stack.auth("admin"))
    assert seen.response(r).status_code == 202, r.text
    return str(grant["job_id"])


def _wrong_s3_secret(stack: Stack, seen: Evidence) -> None:
    wrong = stack.storage.model_copy(update={"secret_access_key": SecretStr(WRONG_S3_SECRET)})
    settings: IngestSettings = stack.upload_app.state.service.settings
    with ServerThread(create_api(settings.model_copy(update={"storage": wrong}))) as api:
        for _ in range(150):  # first the producer connects, then the store is tried
            r = stack.http.get(f"{api.url}/readyz")
            if "object store" in r.text:
                break
            time.sleep(0.2)
        assert (seen.response(r).status_code, r.json()["reason"]) == (503, "not_ready")
        assert "was refused" in r.json()["message"]
        r = stack.http.post(
            f"{api.url}/v1/galleries/sec-secrets/uploads",
            headers=stack.auth("upload"),
            files={"file": ("a.jpg", (CORPUS / "jpeg" / "exif_nikon_d70.jpg").read_bytes())},
        )
        assert (seen.response(r).status_code, r.json()["reason"]) == (503, "storage_unavailable")

    async def direct() -> None:
        async with S3Store(wrong) as store:
            with pytest.raises(StorageAccessDenied) as info:
                await store.put("k", b"x")
        seen.exception(info.value)

    asyncio.run(direct())


def _startup_errors(stack: Stack, seen: Evidence) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DARKROOM_", "KAFKA_"))}
    assert stack.storage.access_key_id is not None
    env |= {
        "KAFKA_BOOTSTRAP_SERVERS": stack.bootstrap,
        "DARKROOM_STORAGE__BACKEND": "s3",
        "DARKROOM_STORAGE__BUCKET": str(stack.storage.bucket),
        "DARKROOM_STORAGE__ENDPOINT_URL": str(stack.storage.endpoint_url),
        "DARKROOM_STORAGE__ACCESS_KEY_ID": stack.storage.access_key_id.get_secret_value(),
        "DARKROOM_STORAGE__SECRET_ACCESS_KEY": stack.secrets["S3 secret access key"],
        "DARKROOM_RAW_PROVIDER_IMAGEN__API_KEY": stack.provider_key,
        "DARKROOM_INGEST_UPLOAD_TOKEN_SECRET": stack.token_secret,
    }
    keys = [
        {"name": f"k{i}", "key": k, "scopes": ["admin"]} for i, k in enumerate(stack.keys.values())
    ]
    runs = {
        # A JSON list cut short: pydantic-settings cannot parse it.
        "darkroom_ingest.api": {"DARKROOM_AUTH__API_KEYS": json.dumps(keys)[:-2]},
        # A key with an unknown scope.
        "darkroom_catalog": {
            "DARKROOM_AUTH__API_KEYS": f'[{{"name": "ops", "key": "{stack.keys["admin"]}", "scopes": ["root"]}}]'
        },
        # The provider key set, with a negative deadline; and a second S3 secret.
        "darkroom_raw_provider": {
            "DARKROOM_RAW_PROVIDER_IMAGEN__DEADLINE_S": "-1",
            "DARKROOM_RAW_PROVIDER_STORAGE__SECRET_ACCESS_KEY": WRONG_S3_SECRET,
        },
    }
    procs = {
        module: subprocess.Popen(
            [sys.executable, "-m", module],
            env=env | extra,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for module, extra in runs.items()
    }
    for module, proc in procs.items():
        out, _ = proc.communicate(timeout=120)
        seen.add("start-up output", out)
        assert proc.returncode == 2, (module, out[-2000:])
        assert "invalid" in out, (module, out[-2000:])
        assert "Traceback" not in out, (module, out[-2000:])


def _settings_texts(stack: Stack, seen: Evidence) -> None:
    common = {
        "storage": stack.storage,
        "auth": {"api_keys": [{"name": "ops", "key": stack.keys["admin"], "scopes": ["admin"]}]},
    }
    built = [
        IngestSettings(
            **common, upload_token_secret=stack.token_secret, catalog_api_key=stack.keys["read"]
        ),
        RawProviderSettings(**common, imagen={"api_key": stack.provider_key}),
        VariantsSettings(**common),
        CatalogSettings(**common),
    ]
    for s in built:
        seen.add("settings", repr(s), str(s), s.model_dump_json(), str(s.model_dump()))
    with pytest.raises(ConfigurationError) as info:
        load_settings(
            IngestSettings,
            auth={"api_keys": [{"name": "bad name", "key": stack.keys["admin"], "scopes": []}]},
            upload_token_secret=stack.token_secret,
        )
    seen.exception(info.value)


async def _topic_records(stack: Stack) -> list[str]:
    """Every record (key and value, as Latin-1 text) of every topic of the stack's prefix."""
    async with admin_client(stack.bootstrap) as admin:
        topics = [t for t in await admin.list_topics() if t.startswith(stack.prefix)]
    return [
        (r.key or b"").decode("latin-1") + (r.value or b"").decode("latin-1")
        async for r in read_to_end(stack.bootstrap, topics)
    ]


def test_no_secret_in_logs_errors_events_or_answers(stack, caplog):
    caplog.set_level(logging.DEBUG)
    seen = Evidence()
    gallery = "sec-imagen"
    _upload_api_calls(stack, seen)
    _catalog_calls(stack, seen, gallery)
    job = _provider_401(stack, seen, gallery)
    _wrong_s3_secret(stack, seen)
    _startup_errors(stack, seen)
    _settings_texts(stack, seen)
    stack.cataloged(job, attempts=2)  # the retried attempt met the provider's 401 too
    # Not the test's own HTTP client (httpx in this thread): it logs the URLs it requests,
    # and the gallery page's ?key= is in its first URL by design.
    records = [
        r
        for r in caplog.records
        if not (r.thread == threading.get_ident() and r.name.startswith(("httpx", "httpcore")))
    ]
    seen.add("log records (this process)", *(r.getMessage() for r in records))
    seen.add("log records (this process)", *(repr(r.__dict__) for r in records))
    lines = Counter[str]()
    for path in stack.log_files():
        text = path.read_text(errors="replace")
        seen.add(f"log file {path.name}", text)
        lines[path.name] = text.count("\n")
    seen.add("kafka records", *asyncio.run(_topic_records(stack)))
    secrets = stack.secrets | {"unknown API key": WRONG_API_KEY, "wrong S3 secret": WRONG_S3_SECRET}
    counts = {where: len(texts) for where, texts in seen.texts.items()}
    print(
        f"\n{len(secrets)} secrets searched (whole and first 8 chars) in: {counts}; "
        f"{len(records)} log records at DEBUG here, log file lines {dict(lines)}"
    )
    assert len(records) > 100
    assert sum(lines.values()) > 50
    assert not seen.leaks(secrets)
