"""The Faust app factory: explicit values win over Faust's own environment variables."""

from __future__ import annotations

import logging

from darkroom_common.codec import CODEC_NAME
from darkroom_common.faust_app import broker_urls, create_app, ignored_faust_env
from darkroom_common.settings import DarkroomSettings


def test_faust_env_vars_do_not_override_settings(monkeypatch, tmp_path, caplog):
    monkeypatch.setenv("BROKER_URL", "kafka://evil.example:1")
    monkeypatch.setenv("APP_DATADIR", "/evil")
    monkeypatch.setenv("WEB_PORT", "1")
    settings = DarkroomSettings(
        kafka_bootstrap_servers="10.0.0.1:9092", data_dir=tmp_path, web_port=7000
    )
    with caplog.at_level(logging.WARNING):
        app = create_app("darkroom-test", settings)
    assert [str(u) for u in app.conf.broker] == ["kafka://10.0.0.1:9092"]
    assert str(app.conf.datadir).startswith(str(tmp_path))
    assert app.conf.web_port == 7000
    assert app.conf.value_serializer == CODEC_NAME
    assert "APP_DATADIR, BROKER_URL, WEB_PORT" in caplog.text


def test_ignored_faust_env_lists_only_faust_names():
    assert ignored_faust_env({"BROKER_URL": "x", "HOME": "/root"}) == ["BROKER_URL"]
    assert ignored_faust_env({}) == []


def test_broker_urls_split_a_bootstrap_list():
    assert broker_urls(" a:1, b:2 ,") == ["kafka://a:1", "kafka://b:2"]
