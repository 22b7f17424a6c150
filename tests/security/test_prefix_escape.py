"""Ids, file names and object keys cannot lead anything out of its prefix.

Every object of an image lives under ``<kind>/<gallery_id>/<image_id>/`` (``originals``,
``masters``, ``variants``). Hostile values — ``..``, ``%2e%2e``, ``/``, ``\\``, absolute
paths, NUL, Unicode look-alikes (``‥`` U+2025, ``．`` U+FF0E, ``／`` U+FF0F), over-long —
go in through every door, on the running stack (:mod:`tests.security.conftest`):

* the upload API: the gallery id in the path, the ``profile`` query parameter and form
  field, the multipart file name, and the presign request's file name;
* the catalog API: job, image and gallery ids in paths and ``/v1/objects/{key}``;
* events other systems produce: an ``uploaded`` event naming another gallery's (or
  image's) original is refused by ingest (``foreign_object_key``), a hostile profile by
  the planner (``unknown_profile``);
* the object stores themselves, beyond ``libs/common/tests/storage`` (key rules,
  symlinks, ``..``): valid keys that look like traversal (``%2e%2e``, look-alikes) stay
  literal, inside the filesystem root and inside the S3 bucket.

Paths are sent byte for byte (:func:`~tests.security.conftest.raw_request`): httpx would
remove dot segments before sending them.
"""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from darkroom_common.errors import InvalidKey, ObjectNotFound
from darkroom_common.storage import FilesystemStore, S3Store
from darkroom_common.uploads import UploadPublisher, uploaded_event
from darkroom_ingest.testing import read_events

from .conftest import CORPUS, Stack, raw_request


def stack_test(test: Callable[..., Any]) -> Callable[..., Any]:
    """Mark ``test`` as one that runs against the stack: e2e, kafka, s3, slow."""
    for mark in (pytest.mark.e2e, pytest.mark.kafka, pytest.mark.s3, pytest.mark.slow):
        test = mark(test)
    return test


JPEG = CORPUS / "jpeg" / "exif_canon_40d_makernote.jpg"
"""A 100×68 camera JPEG: every job of this module is quick."""
SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
"""What the last segment of an original's key may be (``safe_filename``)."""

HOSTILE_IDS = [
    "..",
    "%2e%2e",
    "%2E%2E",
    ".",
    "..%2F..%2Fetc",
    "a%2Fb",
    "%2Fetc%2Fpasswd",
    "..%5C..%5Cwindows",
    "a%5Cb",
    "a%00b",
    "%00",
    "%E2%80%A5",  # ‥ two dot leader (NFKD: "..")
    "%EF%BC%8E%EF%BC%8E",  # ．． fullwidth full stops
    "a%EF%BC%8Fb",  # ／ fullwidth solidus
    "-rf",
    "_hidden",
    "%20g",
    "g" * 129,
]
"""Gallery/image/job ids as they appear in a request path (already percent-encoded)."""


def _uid(name: str) -> str:
    return f"sec-{name}-{uuid.uuid4().hex[:8]}"


def _multipart(filename: bytes, data: bytes, **fields: str) -> tuple[bytes, dict[str, str]]:
    boundary = "secB0undary" + uuid.uuid4().hex
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
        for k, v in fields.items()
    ]
    parts.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="'.encode()
        + filename
        + b'"\r\nContent-Type: image/jpeg\r\n\r\n'
        + data
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return b"".join(parts), {"Content-Type": f"multipart/form-data; boundary={boundary}"}


def _uploaded_count(stack: Stack) -> int:
    return len(read_events(stack.bootstrap, f"{stack.prefix}uploaded", None))


def _json_reason(body: bytes) -> str:
    return str(json.loads(body)["reason"])


@stack_test
def test_hostile_gallery_ids_and_profiles_never_reach_the_store(stack):
    originals, events = stack.objects("originals/"), _uploaded_count(stack)
    form, form_headers = _multipart(b"a.jpg", JPEG.read_bytes())
    headers = form_headers | stack.auth("upload")
    presign = b'{"filename": "a.jpg"}'
    presign_headers = {"Content-Type": "application/json"} | stack.auth("upload")
    answers: dict[str, tuple[int, str]] = {}
    for gallery in HOSTILE_IDS:
        for path, h, body in (
            (f"/v1/galleries/{gallery}/uploads", headers, form),
            (f"/v1/galleries/{gallery}/upload-urls", presign_headers, presign),
        ):
            status, out = raw_request(stack.upload_url, "POST", path, h, body)
            assert status in (404, 422), (path, status, out[:300])
            answers[path] = (status, _json_reason(out))
            if status == 422:
                assert answers[path][1] == "invalid_gallery_id", (path, out[:300])
    for profile in ("..%2F..%2Fetc%2Fpasswd", "%2Fetc%2Fpasswd.json", "default%00", "Default"):
        status, out = raw_request(
            stack.upload_url,
            "POST",
            f"/v1/galleries/sec-g/uploads?profile={profile}",
            headers,
            form,
        )
        assert (status, _json_reason(out)) == (422, "invalid_profile"), (profile, out[:300])
    for profile in ("../../etc/passwd", "/etc/passwd.json", "x.json"):
        form, form_headers = _multipart(b"a.jpg", JPEG.read_bytes(), profile=profile)
        status, out = raw_request(
            stack.upload_url,
            "POST",
            "/v1/galleries/sec-g/uploads",
            form_headers | stack.auth("upload"),
            form,
        )
        assert (status, _json_reason(out)) == (422, "invalid_profile"), (profile, out[:300])
    reasons = sorted({reason for _, reason in answers.values()})
    print(f"\n{len(answers)} hostile gallery paths refused: {reasons}")
    assert stack.objects("originals/") == originals
    assert _uploaded_count(stack) == events


@stack_test
def test_hostile_file_names_become_one_safe_name_inside_the_image_prefix(stack):
    gallery = _uid("names")
    data = JPEG.read_bytes()
    names = [
        b"../../other-gallery/img/evil.jpg",
        b"..\\..\\evil.jpg",
        b"/etc/passwd.jpg",
        b"C:\\Windows\\System32\\evil.jpg",
        "‥／‥／evil.jpg".encode(),
        "．．／．．／evil.jpg".encode(),
        b"%2e%2e%2f%2e%2e%2fevil.jpg",
        b"a\x00b.jpg",
        b"..jpg",
        b"x" * 400 + b".jpg",
    ]
    accepted: dict[bytes, dict[str, str]] = {}
    for n, name in enumerate(names):
        # Distinct bytes (after the JPEG's end marker), or the gallery's duplicate check fails all but one.
        body, headers = _multipart(name, data + b"%d" % n)
        status, out = raw_request(
            stack.upload_url,
            "POST",
            f"/v1/galleries/{gallery}/uploads",
            headers | stack.auth("upload"),
            body,
        )
        assert status == 202, (name, status, out[:300])
        accepted[name] = json.loads(out)
    for name, grant in accepted.items():
        key = grant["object_key"]
        prefix = f"originals/{gallery}/{grant['image_id']}/"
        assert key.startswith(prefix), (name, key)
        assert SAFE_NAME.fullmatch(key[len(prefix) :]), (name, key)
        assert len(key[len(prefix) :]) <= 120, (name, key)
    stored = stack.objects("originals/")
    mine = [k for k in stored if k.startswith(f"originals/{gallery}/")]
    assert sorted(mine) == sorted(g["object_key"] for g in accepted.values())
    assert not [k for k in stored if "evil" in k and not k.startswith(f"originals/{gallery}/")]
    # The jobs run to their end and write only under their own image's prefixes.
    ends = {g["image_id"]: stack.cataloged(g["job_id"]) for g in accepted.values()}
    assert {e.status for e in ends.values()} == {"complete"}, {
        i: e.reason_code for i, e in ends.items()
    }
    written = [
        k
        for kind in ("originals", "masters", "variants")
        for k in stack.objects(f"{kind}/{gallery}/")
    ]
    for key in written:
        _, g, image, last = key.split("/")
        assert (g, image in ends, SAFE_NAME.fullmatch(last) is not None) == (gallery, True, True)
    print(
        f"\n{len(names)} hostile file names: {len(accepted)} stored as "
        f"{sorted(g['object_key'].rsplit('/', 1)[1] for g in accepted.values())}; "
        f"{len(written)} objects written, all under their image's prefixes"
    )


@stack_test
def test_presign_requests_keep_the_key_inside_the_image_prefix(stack):
    gallery = _uid("presign")
    for filename in ("../../../victim/x.jpg", "..\\..\\x.jpg", "‥／x.jpg", "/abs/x.jpg"):
        r = stack.http.post(
            f"{stack.upload_url}/v1/galleries/{gallery}/upload-urls",
            headers=stack.auth("upload"),
            json={"filename": filename},
        )
        assert r.status_code == 201, r.text
        grant = r.json()
        prefix = f"originals/{gallery}/{grant['image_id']}/"
        assert grant["object_key"].startswith(prefix), grant["object_key"]
        assert SAFE_NAME.fullmatch(grant["object_key"][len(prefix) :])
        path = httpx.URL(grant["url"]).raw_path.split(b"?")[0].decode()
        assert path == f"/{stack.storage.bucket}/{quote(grant['object_key'])}", path
    r = stack.http.post(
        f"{stack.upload_url}/v1/galleries/{gallery}/upload-urls",
        headers=stack.auth("upload"),
        json={"filename": "a.jpg", "content_type": "image/jpeg\r\nx-amz-acl: public-read"},
    )
    assert (r.status_code, r.json()["reason"]) == (422, "invalid_content_type")


@stack_test
def test_catalog_paths_cannot_reach_other_objects_or_galleries(stack):
    gallery = _uid("victim")
    grant = stack.upload(JPEG, gallery)
    assert stack.cataloged(grant["job_id"]).status == "complete"
    original = grant["object_key"]
    secret_bytes = JPEG.read_bytes()
    variant = next(k for k in stack.objects(f"variants/{gallery}/") if "/thumb-" in k)
    read = stack.auth("read")
    ok, body = raw_request(stack.catalog, "GET", f"/v1/objects/{quote(variant)}", read)
    assert ok == 200  # the route works for a real variant
    assert body[:2] == b"\xff\xd8"
    rest = original.removeprefix("originals/")
    for path in (
        f"/v1/objects/{original}",
        f"/v1/objects/variants/../{original}",
        f"/v1/objects/variants/%2e%2e/{original}",
        f"/v1/objects/variants/%2E%2E/{quote(original, safe='')}",
        f"/v1/objects/variants%2F..%2F{quote(original, safe='')}",
        f"/v1/objects/variants/{gallery}/../../{original}",
        f"/v1/objects/variants\\..\\{original}",
        f"/v1/objects/variants/..%5C{quote(original, safe='')}",
        f"/v1/objects//{original}",
        f"/v1/objects/variants/%00/{rest}",
        f"/v1/objects/variants/%E2%80%A5/{original}",
    ):
        status, body = raw_request(stack.catalog, "GET", path, read)
        assert status in (400, 404), (path, status, body[:300])
        assert secret_bytes[:4096] not in body, path
    image = grant["image_id"]
    events = [f"/v1/jobs/{hostile}/events" for hostile in HOSTILE_IDS[:4]]  # each waits 1 s
    for path in events:
        status, body = raw_request(stack.catalog, "GET", path, read)
        assert status in (400, 404), (path, status, body[:300])
    for hostile in HOSTILE_IDS:
        for path in (f"/v1/jobs/{hostile}", f"/v1/images/{hostile}"):
            status, body = raw_request(stack.catalog, "GET", path, read)
            assert status in (400, 404), (path, status, body[:300])
        status, body = raw_request(stack.catalog, "GET", f"/v1/galleries/{hostile}/settings", read)
        assert status in (400, 404), (hostile, status, body[:300])
        for path in (f"/v1/galleries/{hostile}/images", f"/galleries/{hostile}"):
            status, body = raw_request(stack.catalog, "GET", path, read)
            assert status < 500, (path, status, body[:300])
            assert image.encode() not in body, (path, body[:300])
    for path in (
        f"/v1/galleries/..%2F{gallery}/images",
        f"/v1/galleries/{gallery}%2F..%2F{gallery}/images",
        f"/v1/jobs/..%2F{image}",
        f"/v1/jobs/{image}%00",
        f"/v1/images/%2e%2e%2F{image}",
        f"/v1/images/{image}%2F..",
    ):
        status, body = raw_request(stack.catalog, "GET", path, read)
        assert status in (200, 400, 404), (path, status, body[:300])
        assert b'"complete"' not in body, (path, body[:300])
    for hostile in ("..", "%2e%2e", f"..%2F..%2Fv1%2Fimages%2F{image}", f"%2e%2e%2F{image}"):
        status, body = raw_request(
            stack.catalog,
            "POST",
            f"/galleries/{gallery}/jobs/{hostile}/retry",
            stack.auth("admin") | {"X-Darkroom-Page": "1"},
        )
        assert status in (400, 404), (hostile, status, body[:300])
    r = stack.http.get(f"{stack.catalog}/v1/images/{image}", headers=read)
    assert (r.status_code, r.json()["status"]) == (200, "complete")  # untouched


async def _publish(stack: Stack, events: list) -> None:
    async with UploadPublisher(stack.bootstrap, topic_prefix=stack.prefix) as publisher:
        for event in events:
            await publisher.publish(event)


@stack_test
def test_ingest_refuses_uploaded_events_naming_another_images_objects(stack):
    victim_gallery, attacker = _uid("victim"), _uid("attacker")
    grant = stack.upload(JPEG, victim_gallery)
    assert stack.cataloged(grant["job_id"]).status == "complete"
    victim_key, victim_image = grant["object_key"], grant["image_id"]
    victim_variant = stack.objects(f"variants/{victim_gallery}/")[0]
    size = JPEG.stat().st_size

    def event(object_key: str, *, gallery: str = attacker, image: str | None = None, **extra):
        return uploaded_event(
            gallery_id=gallery,
            image_id=image or uuid.uuid4().hex,
            object_key=object_key,
            filename="x.jpg",
            size_bytes=size,
            **extra,
        )

    own = uuid.uuid4().hex
    own_key = f"originals/{attacker}/{own}/x.jpg"

    async def put_own() -> None:
        async with S3Store(stack.storage) as store:
            await store.put(own_key, JPEG.read_bytes())

    asyncio.run(put_own())
    foreign = [
        event(victim_key),  # another gallery's original
        event(
            f"originals/{attacker}/x/../../{victim_gallery}/{victim_image}/{Path(victim_key).name}"
        ),
        event(victim_variant),
        event(f"masters/{victim_gallery}/{victim_image}/master.jpg"),
        event(victim_key, gallery=victim_gallery),  # same gallery, another image's original
        event(f"{victim_key}/.."),
        event(f"/{victim_key}"),
        event(f"originals\\{victim_gallery}\\{victim_image}\\x.jpg"),
    ]
    hostile_profile = event(own_key, image=own, profile="../../../../etc/passwd")
    asyncio.run(_publish(stack, [*foreign, hostile_profile]))
    for e in foreign:
        end = stack.cataloged(e.job_id)
        assert (end.status, end.reason_code) == ("failed", "foreign_object_key"), e.object_key
        assert not end.variants
    end = stack.cataloged(hostile_profile.job_id)
    assert (end.status, end.reason_code) == ("failed", "unknown_profile")
    assert stack.objects(f"variants/{attacker}/") == []
    assert stack.objects(f"masters/{attacker}/") == []
    r = stack.http.get(
        f"{stack.catalog}/v1/galleries/{attacker}/images", headers=stack.auth("read")
    )
    assert r.status_code == 200
    assert {i["status"] for i in r.json()["images"]} == {"failed"}
    print(
        f"\n{len(foreign)} uploaded events naming another image's objects: all failed "
        f"foreign_object_key; a hostile profile failed unknown_profile; the attacker's "
        f"gallery holds no variant or master"
    )


TRICKY_VALID_KEYS = [
    "%2e%2e/%2e%2e/escaped",
    "..%2F..%2Fescaped",
    "‥/‥/escaped",
    "．．/．．/escaped",
    "a/…/escaped",
    "...",
    "a/.../b",
    "%00",
    "~/escaped",
    "$HOME/escaped",
]
"""Keys the rules accept although they look like traversal: each must stay a literal key."""

HOSTILE_KEYS = [
    "../escaped",
    "a/../../escaped",
    "/tmp/escaped",
    "a\\..\\..\\escaped",
    "a/\x00/escaped",
    "a//escaped",
    "./escaped",
    "a/..",
]


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


async def test_the_filesystem_store_never_touches_a_path_outside_its_root(tmp_path):
    (tmp_path / "outside.txt").write_bytes(b"outside")
    (tmp_path / "escaped").write_bytes(b"do not touch")
    store = FilesystemStore(tmp_path / "sandbox" / "store")
    before = _tree(tmp_path)
    for key in HOSTILE_KEYS:
        for operation in (
            store.put(key, b"x"),
            store.get_bytes(key),
            store.head(key),
            store.exists(key),
            store.delete(key),
        ):
            with pytest.raises(InvalidKey):
                await operation
    for key in TRICKY_VALID_KEYS:
        await store.put(key, key.encode())
        assert await store.get_bytes(key) == key.encode()
    assert sorted([i.key async for i in store.list()]) == sorted(TRICKY_VALID_KEYS)
    after = _tree(tmp_path)
    changed = {k for k in set(before) | set(after) if before.get(k) != after.get(k)}
    assert changed
    assert all(k.startswith("sandbox/store/") for k in changed), sorted(changed)
    for key in TRICKY_VALID_KEYS:
        await store.delete(key)
    assert _tree(tmp_path) == before


@pytest.mark.s3
async def test_s3_keys_stay_literal_inside_their_bucket(s3_server, s3_store):
    victim = S3Store(s3_server.settings(f"victim-{uuid.uuid4().hex[:12]}"))
    async with victim:
        await victim.ensure_bucket()
        await victim.put("secret", b"victim's")
        for key in [
            f"..%2F{victim.bucket}%2Fsecret",
            f"%2e%2e/{victim.bucket}/secret",
            f"‥/{victim.bucket}/secret",
            *TRICKY_VALID_KEYS,
        ]:
            with pytest.raises(ObjectNotFound):
                await s3_store.get_bytes(key)
            await s3_store.put(key, b"mine")
            assert await s3_store.get_bytes(key) == b"mine"
        for key in [*HOSTILE_KEYS, f"../{victim.bucket}/secret"]:
            with pytest.raises(InvalidKey):
                await s3_store.put(key, b"x")
            with pytest.raises(InvalidKey):
                await s3_store.get_bytes(key)
        assert [i.key async for i in victim.list()] == ["secret"]
        assert await victim.get_bytes("secret") == b"victim's"
        assert len([i async for i in s3_store.list()]) == 3 + len(TRICKY_VALID_KEYS)
        client = await victim.client()
        await client.delete_object(Bucket=victim.bucket, Key="secret")
        await client.delete_bucket(Bucket=victim.bucket)
