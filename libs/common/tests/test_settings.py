"""Settings: precedence of prefixes, KAFKA_BOOTSTRAP_SERVERS, secrets, clear errors."""

from __future__ import annotations

import pytest
from pydantic_settings import SettingsConfigDict

from darkroom_common.errors import ConfigurationError
from darkroom_common.settings import DEFAULT_BOOTSTRAP, DarkroomSettings, load_settings


class DemoSettings(DarkroomSettings):
    service = "demo"
    model_config = SettingsConfigDict(env_prefix="DARKROOM_DEMO_")


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    import os

    for key in list(os.environ):
        if key.startswith("DARKROOM_") or key == "KAFKA_BOOTSTRAP_SERVERS":
            monkeypatch.delenv(key)


def test_defaults_are_the_embedded_ones():
    s = load_settings(DemoSettings)
    assert s.kafka_bootstrap_servers == DEFAULT_BOOTSTRAP
    assert s.storage.backend == "local"
    assert s.topic("uploaded") == "darkroom.uploaded"


def test_kafka_bootstrap_servers_is_honoured(monkeypatch):
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "broker-a:9092,broker-b:9092")
    assert load_settings(DemoSettings).kafka_bootstrap_servers == "broker-a:9092,broker-b:9092"


def test_service_prefix_beats_shared_prefix(monkeypatch):
    monkeypatch.setenv("DARKROOM_TOPIC_PARTITIONS", "12")
    monkeypatch.setenv("DARKROOM_LOG_LEVEL", "DEBUG")
    monkeypatch.setenv("DARKROOM_DEMO_TOPIC_PARTITIONS", "3")
    s = load_settings(DemoSettings)
    assert s.topic_partitions == 3
    assert s.log_level == "DEBUG"


def test_nested_storage_settings_and_secrets_are_masked(monkeypatch):
    monkeypatch.setenv("DARKROOM_STORAGE__BACKEND", "s3")
    monkeypatch.setenv("DARKROOM_STORAGE__BUCKET", "photos")
    monkeypatch.setenv("DARKROOM_STORAGE__ACCESS_KEY_ID", "AKIADEMO")
    monkeypatch.setenv("DARKROOM_STORAGE__SECRET_ACCESS_KEY", "hunter2-very-secret")
    s = load_settings(DemoSettings)
    assert s.storage.backend == "s3"
    assert s.storage.secret_access_key is not None
    assert s.storage.secret_access_key.get_secret_value() == "hunter2-very-secret"
    assert "hunter2" not in repr(s)
    assert "hunter2" not in str(s.model_dump())


def test_invalid_value_names_the_variable(monkeypatch):
    monkeypatch.setenv("DARKROOM_DEMO_TOPIC_PARTITIONS", "zero")
    with pytest.raises(ConfigurationError) as info:
        load_settings(DemoSettings)
    assert "DARKROOM_DEMO_TOPIC_PARTITIONS" in info.value.message
    assert info.value.retriable is False


def test_s3_backend_without_bucket_is_refused(monkeypatch):
    monkeypatch.setenv("DARKROOM_STORAGE__BACKEND", "s3")
    with pytest.raises(ConfigurationError, match="bucket"):
        load_settings(DemoSettings)
