"""Pytest plugin: a real S3-compatible server for the test session.

Load it from the root ``conftest.py`` (``pytest_plugins = [..., "darkroom_dev.testing.s3"]``).

Fixtures:
    ``s3_server`` (session): starts :class:`~darkroom_dev.local.s3proxy.LocalS3Proxy`
        on a free port with its state in ``<repo>/.darkroom/test-s3-<pid>`` and
        stops it (and removes the folder) when the session ends. When
        ``DARKROOM_TEST_S3_ENDPOINT`` is set, that server is used instead, with
        ``DARKROOM_TEST_S3_ACCESS_KEY_ID``, ``DARKROOM_TEST_S3_SECRET_ACCESS_KEY``
        and optionally ``DARKROOM_TEST_S3_REGION``.
    ``s3_settings`` (function): :class:`StorageSettings` for a fresh, empty bucket,
        with 5 MiB multipart thresholds and short timeouts.
    ``s3_store`` (function): an :class:`S3Store` on that bucket; the bucket is
        emptied and deleted afterwards.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import pytest
import pytest_asyncio
from pydantic import SecretStr

from darkroom_common.storage import MIN_PART_BYTES, S3Store, StorageSettings
from darkroom_dev.local.jars import repo_root
from darkroom_dev.local.s3proxy import LocalS3Proxy
from darkroom_dev.local.services import free_port


@dataclass(frozen=True, slots=True)
class S3Server:
    """How to reach the session's S3 server.

    Attributes:
        endpoint_url: e.g. ``http://127.0.0.1:41234``.
        access_key_id: the access key the server accepts.
        secret_access_key: its secret.
        region: the SigV4 signing region.
    """

    endpoint_url: str
    access_key_id: str
    secret_access_key: str
    region: str = "us-east-1"

    def settings(self, bucket: str, **overrides: object) -> StorageSettings:
        """Return ``backend="s3"`` :class:`StorageSettings` for ``bucket`` on this server."""
        values: dict[str, object] = {
            "backend": "s3",
            "bucket": bucket,
            "endpoint_url": self.endpoint_url,
            "region": self.region,
            "access_key_id": SecretStr(self.access_key_id),
            "secret_access_key": SecretStr(self.secret_access_key),
        }
        values.update(overrides)
        return StorageSettings.model_validate(values)


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """The session's S3 server (see the module docstring); fails the test if it cannot start."""
    endpoint = os.environ.get("DARKROOM_TEST_S3_ENDPOINT")
    if endpoint:
        key = os.environ.get("DARKROOM_TEST_S3_ACCESS_KEY_ID")
        secret = os.environ.get("DARKROOM_TEST_S3_SECRET_ACCESS_KEY")
        if not key or not secret:
            pytest.fail(
                "DARKROOM_TEST_S3_ENDPOINT is set but DARKROOM_TEST_S3_ACCESS_KEY_ID / "
                "DARKROOM_TEST_S3_SECRET_ACCESS_KEY are not"
            )
        yield S3Server(
            endpoint, key, secret, os.environ.get("DARKROOM_TEST_S3_REGION", "us-east-1")
        )
        return
    state_dir = repo_root() / ".darkroom" / f"test-s3-{os.getpid()}"
    proxy = LocalS3Proxy(
        state_dir, free_port(), access_key="darkroom-test", secret_key=uuid.uuid4().hex
    )
    try:
        proxy.start()
        yield S3Server(proxy.endpoint_url, proxy.access_key, proxy.secret_key)
    finally:
        proxy.stop()
        shutil.rmtree(state_dir, ignore_errors=True)


@pytest.fixture
def s3_settings(s3_server: S3Server) -> StorageSettings:
    """Settings for a fresh bucket (not yet created) with 5 MiB multipart and short timeouts."""
    return s3_server.settings(
        f"test-{uuid.uuid4().hex[:16]}",
        multipart_threshold_bytes=MIN_PART_BYTES,
        multipart_part_bytes=MIN_PART_BYTES,
        connect_timeout_s=2.0,
        read_timeout_s=30.0,
        max_attempts=2,
    )


@pytest_asyncio.fixture
async def s3_store(s3_settings: StorageSettings) -> AsyncIterator[S3Store]:
    """An :class:`S3Store` on a new empty bucket, emptied and deleted after the test."""
    store = S3Store(s3_settings)
    await store.ensure_bucket()
    try:
        yield store
    finally:
        await drop_bucket(store)
        await store.close()


async def drop_bucket(store: S3Store) -> None:
    """Abort open multipart uploads, delete every object, then the bucket (best effort)."""
    client = await store.client()
    with contextlib.suppress(Exception):
        uploads = await client.list_multipart_uploads(Bucket=store.bucket)
        for upload in uploads.get("Uploads", []):
            await client.abort_multipart_upload(
                Bucket=store.bucket, Key=upload["Key"], UploadId=upload["UploadId"]
            )
    with contextlib.suppress(Exception):
        async for info in store.list():
            await client.delete_object(Bucket=store.bucket, Key=info.key)
        await client.delete_bucket(Bucket=store.bucket)
