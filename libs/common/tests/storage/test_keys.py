"""Key validation: the rule every backend applies before touching storage."""

from __future__ import annotations

import pytest

from darkroom_common.errors import InvalidKey
from darkroom_common.storage import MAX_KEY_BYTES, join_key, validate_key, validate_prefix

BAD_KEYS = [
    pytest.param("", id="empty"),
    pytest.param("/abs/key", id="absolute"),
    pytest.param("/", id="slash-only"),
    pytest.param("..", id="dotdot"),
    pytest.param(".", id="dot"),
    pytest.param("../etc/passwd", id="dotdot-leading"),
    pytest.param("a/../../b", id="dotdot-middle"),
    pytest.param("a/..", id="dotdot-trailing"),
    pytest.param("a/./b", id="dot-segment"),
    pytest.param("a//b", id="empty-segment"),
    pytest.param("a/", id="trailing-slash"),
    pytest.param("a\\b", id="backslash"),
    pytest.param("..\\..\\windows", id="backslash-dotdot"),
    pytest.param("a\x00b", id="nul"),
    pytest.param("a\nb", id="newline"),
    pytest.param("a\rb", id="carriage-return"),
    pytest.param("a\tb", id="tab"),
    pytest.param("a\x1fb", id="unit-separator"),
    pytest.param("a\x7fb", id="del"),
    pytest.param("a\x85b", id="c1-next-line"),
    pytest.param("a\x9fb", id="c1-last"),
    pytest.param("a\ud800b", id="lone-surrogate"),
    pytest.param("k" * (MAX_KEY_BYTES + 1), id="too-long-ascii"),
    pytest.param("é" * (MAX_KEY_BYTES // 2 + 1), id="too-long-utf8-bytes"),
]


@pytest.mark.parametrize("key", BAD_KEYS)
def test_bad_keys_are_rejected(key: str) -> None:
    with pytest.raises(InvalidKey) as info:
        validate_key(key)
    assert info.value.reason_code == "invalid_key"
    assert not info.value.retriable


@pytest.mark.parametrize(
    "key",
    [
        "a",
        "variants/01J9ZK3V6Y/w1024.avif",
        "café/日本語 ü.jpg",
        "a b+c%20d=e&f.txt",
        "...",  # three dots is an ordinary name, not a path operator
        ".hidden/.x",
        "a.b/c..d",
        "k" * MAX_KEY_BYTES,
        "é" * (MAX_KEY_BYTES // 2),
        "\xa0nbsp",  # U+00A0 is just above the C1 range
    ],
)
def test_good_keys_are_returned_unchanged(key: str) -> None:
    assert validate_key(key) is key


def test_non_string_key_is_rejected() -> None:
    with pytest.raises(InvalidKey, match="must be a str"):
        validate_key(b"bytes")  # type: ignore[arg-type]


def test_join_key_joins_validated_parts() -> None:
    assert join_key("variants", "01J9", "w1024.avif") == "variants/01J9/w1024.avif"
    assert join_key("variants/01J9", "w1024.avif") == "variants/01J9/w1024.avif"


@pytest.mark.parametrize(
    "parts",
    [
        ("variants", "../originals"),
        ("variants", ""),
        ("variants/", "x"),
        ("variants", "/etc/passwd"),
        ("variants", "a\\b"),
        ("variants", "a\x00"),
        ("k" * 600, "k" * 600),
        (),
    ],
)
def test_join_key_rejects_hostile_parts(parts: tuple[str, ...]) -> None:
    with pytest.raises(InvalidKey):
        join_key(*parts)


@pytest.mark.parametrize("prefix", ["", "a", "a/", "variants/01J", "café/"])
def test_good_prefixes(prefix: str) -> None:
    assert validate_prefix(prefix) == prefix


@pytest.mark.parametrize("prefix", ["/", "/a", "a//", "../", "a/../", "a\\", "a\x00/"])
def test_bad_prefixes(prefix: str) -> None:
    with pytest.raises(InvalidKey):
        validate_prefix(prefix)
