"""API keys: 401 for no or unknown keys, 403 for a missing scope, secrets never echoed."""

from __future__ import annotations

import json

import pytest

from darkroom_common.auth import ApiKey, AuthSettings, Forbidden, KeyRing, Unauthenticated
from darkroom_common.errors import ConfigurationError

READER = "r" * 32
ADMIN = "a" * 32


@pytest.fixture
def ring():
    return KeyRing(
        [
            ApiKey(name="reader", key=READER, scopes={"read"}),
            ApiKey(name="ops", key=ADMIN, scopes={"admin"}),
        ]
    )


def test_known_key_with_scope_is_allowed(ring):
    assert ring.authorize(f"Bearer {READER}", "read").name == "reader"
    assert ring.authorize(f"bearer {ADMIN}", "upload").name == "ops"  # admin holds every scope


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "Basic abc",
        "Bearer",
        "Bearer   ",
        f"Token {READER}",
        "Bearer not-a-key-at-all-000000",
    ],
)
def test_missing_malformed_or_unknown_key_is_401(ring, header):
    with pytest.raises(Unauthenticated) as info:
        ring.authorize(header, "read")
    assert info.value.status == 401
    assert READER not in str(info.value)


def test_known_key_without_scope_is_403(ring):
    with pytest.raises(Forbidden) as info:
        ring.authorize(f"Bearer {READER}", "admin")
    assert info.value.status == 403
    assert "reader" in info.value.message
    assert READER not in info.value.message


def test_keys_file_and_inline_keys_combine(tmp_path):
    path = tmp_path / "keys.json"
    path.write_text(json.dumps([{"name": "uploader", "key": "u" * 32, "scopes": ["upload"]}]))
    ring = KeyRing.from_settings(
        AuthSettings(api_keys=[ApiKey(name="ops", key=ADMIN, scopes={"admin"})], api_keys_file=path)
    )
    assert len(ring) == 2
    assert ring.authorize("Bearer " + "u" * 32, "upload").name == "uploader"


@pytest.mark.parametrize("content", ["not json", json.dumps([{"name": "x", "key": "short"}])])
def test_invalid_keys_file_is_a_configuration_error_without_the_secret(tmp_path, content):
    path = tmp_path / "keys.json"
    path.write_text(content)
    with pytest.raises(ConfigurationError) as info:
        KeyRing.from_settings(AuthSettings(api_keys_file=path))
    assert "short" not in info.value.message


def test_missing_keys_file_is_a_configuration_error(tmp_path):
    with pytest.raises(ConfigurationError, match="cannot read"):
        KeyRing.from_settings(AuthSettings(api_keys_file=tmp_path / "nope.json"))


def test_duplicate_key_values_are_refused():
    with pytest.raises(ConfigurationError, match="same key"):
        KeyRing([ApiKey(name="a", key=ADMIN), ApiKey(name="b", key=ADMIN)])
