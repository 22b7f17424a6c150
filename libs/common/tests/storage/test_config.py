"""StorageSettings validation and the backend factory."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import BaseModel, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from darkroom_common.errors import ConfigurationError, InvalidKey
from darkroom_common.storage import FilesystemStore, S3Store, StorageSettings, open_store

MIB = 1024 * 1024


def test_defaults_are_the_local_backend() -> None:
    s = StorageSettings()
    assert s.backend == "local"
    assert s.root == Path(".darkroom/objects")
    assert (s.multipart_threshold_bytes, s.multipart_part_bytes) == (8 * MIB, 8 * MIB)
    assert s.presign_expiry_s == 900
    assert s.region == "us-east-1"


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"backend": "s3"}, "needs a bucket"),
        ({"backend": "s3", "bucket": "Bad_Bucket"}, "not a valid S3 bucket"),
        ({"backend": "s3", "bucket": "ab"}, "not a valid S3 bucket"),
        ({"backend": "s3", "bucket": "a..b"}, "not a valid S3 bucket"),
        ({"backend": "gcs"}, "backend"),
        ({"access_key_id": "AKID"}, "both access_key_id and secret_access_key"),
        ({"multipart_part_bytes": 5 * MIB - 1}, "multipart_part_bytes"),
        ({"multipart_threshold_bytes": 0}, "multipart_threshold_bytes"),
        ({"presign_expiry_s": 0}, "presign_expiry_s"),
        ({"presign_expiry_s": 7 * 24 * 3600 + 1}, "presign_expiry_s"),
        ({"max_attempts": 0}, "max_attempts"),
        ({"connect_timeout_s": 0}, "connect_timeout_s"),
        ({"unknown_setting": 1}, "unknown_setting"),
    ],
)
def test_invalid_settings_are_refused(values: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        StorageSettings.model_validate(values)


def test_secrets_are_hidden() -> None:
    s = StorageSettings(
        backend="s3",
        bucket="photos",
        access_key_id=SecretStr("AKIDVISIBLE"),
        secret_access_key=SecretStr("very-secret-value"),
    )
    for text in (repr(s), str(s), s.model_dump_json()):
        assert "very-secret-value" not in text
        assert "AKIDVISIBLE" not in text
    assert s.secret_access_key is not None
    assert s.secret_access_key.get_secret_value() == "very-secret-value"


def test_nested_in_service_settings_reads_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    class ServiceSettings(BaseSettings):
        model_config = SettingsConfigDict(env_prefix="DARKROOM_TEST_", env_nested_delimiter="__")
        storage: StorageSettings = StorageSettings()

    monkeypatch.setenv("DARKROOM_TEST_STORAGE__BACKEND", "s3")
    monkeypatch.setenv("DARKROOM_TEST_STORAGE__BUCKET", "gallery")
    monkeypatch.setenv("DARKROOM_TEST_STORAGE__ENDPOINT_URL", "http://127.0.0.1:9000")
    monkeypatch.setenv("DARKROOM_TEST_STORAGE__SECRET_ACCESS_KEY", "s3cr3t")
    monkeypatch.setenv("DARKROOM_TEST_STORAGE__ACCESS_KEY_ID", "AKID")
    s = ServiceSettings().storage
    assert (s.backend, s.bucket, s.endpoint_url) == ("s3", "gallery", "http://127.0.0.1:9000")
    assert s.secret_access_key == SecretStr("s3cr3t")

    monkeypatch.delenv("DARKROOM_TEST_STORAGE__BUCKET")
    with pytest.raises(ValidationError, match="needs a bucket"):
        ServiceSettings()


def test_public_url() -> None:
    assert StorageSettings().public_url("a/b.jpg") is None
    s = StorageSettings(public_base_url="https://cdn.example.org/media/")
    assert s.public_url("v/café 1.jpg") == "https://cdn.example.org/media/v/caf%C3%A9%201.jpg"
    with pytest.raises(InvalidKey):
        s.public_url("../secret")


def test_open_store_picks_the_backend(tmp_path: Path) -> None:
    local = open_store(StorageSettings(root=tmp_path))
    assert isinstance(local, FilesystemStore)
    assert local.root == tmp_path
    s3 = open_store(StorageSettings(backend="s3", bucket="photos"))
    assert isinstance(s3, S3Store)
    assert s3.bucket == "photos"


def test_s3store_without_bucket_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="bucket"):
        S3Store(StorageSettings())


class _Nested(BaseModel):
    storage: StorageSettings


def test_settings_are_frozen() -> None:
    s = _Nested(storage=StorageSettings()).storage
    with pytest.raises(ValidationError):
        s.backend = "s3"  # type: ignore[misc]
