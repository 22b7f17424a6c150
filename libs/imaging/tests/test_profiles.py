"""The profile catalog: built-in profiles, a folder of extra ones, and only plain names."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from darkroom_imaging.profiles import (
    PROFILE_NAME,
    ProfileCatalog,
    ProfileError,
    list_profiles,
    load_profile,
)


def write_profile(folder: Path, name: str, *specs: str, title: str | None = None) -> Path:
    path = folder / f"{name}.json"
    path.write_text(
        json.dumps(
            {
                "name": title or name,
                "specs": [{"name": s, "width": 16, "height": 16} for s in specs],
            }
        )
    )
    return path


def test_without_a_folder_the_catalog_is_the_built_in_profiles():
    catalog = ProfileCatalog()
    assert catalog.names() == list_profiles()
    assert {"default", "bench"} <= set(catalog.names())
    assert catalog.resolve("default") == load_profile("default")
    assert catalog.resolve("default") is catalog.resolve("default")  # read once
    assert "default" in catalog
    assert "nope" not in catalog
    assert 42 not in catalog


def test_a_folder_adds_its_json_profiles(tmp_path):
    write_profile(tmp_path, "tiny", "t")
    (tmp_path / "notes.txt").write_text("not a profile")
    (tmp_path / "Not Plain.json").write_text("{}")
    catalog = ProfileCatalog(tmp_path)
    assert catalog.names() == sorted([*list_profiles(), "tiny"])
    assert [s.name for s in catalog.resolve("tiny").specs] == ["t"]
    assert catalog.resolve("bench") == load_profile("bench")
    assert "tiny" in catalog


def test_a_folder_profile_overrides_the_built_in_one_of_the_same_name(tmp_path):
    write_profile(tmp_path, "default", "only", title="default")
    assert [s.name for s in ProfileCatalog(tmp_path).resolve("default").specs] == ["only"]
    assert ProfileCatalog(tmp_path).names().count("default") == 1
    assert ProfileCatalog().resolve("default") == load_profile("default")


def test_a_missing_folder_leaves_the_built_in_profiles(tmp_path):
    catalog = ProfileCatalog(tmp_path / "absent")
    assert catalog.names() == list_profiles()
    assert catalog.resolve("default") == load_profile("default")


@pytest.mark.parametrize(
    "name",
    ["", "../../etc/passwd", "/tmp/x.json", "tiny.json", "Default", "-lead", "a b", "x" * 64],
)
def test_only_plain_names_resolve(tmp_path, name):
    write_profile(tmp_path, "tiny", "t")
    catalog = ProfileCatalog(tmp_path)
    assert not catalog.is_name(name)
    assert not re.match(PROFILE_NAME, name)
    with pytest.raises(ProfileError, match="not a plain name"):
        catalog.resolve(name)


def test_plain_names_match_the_documented_pattern():
    for name in ("default", "a", "web-2", "print_a4", "x" * 63):
        assert ProfileCatalog.is_name(name)


def test_an_unknown_or_invalid_profile_is_a_profile_error_until_it_is_fixed(tmp_path):
    catalog = ProfileCatalog(tmp_path)
    with pytest.raises(ProfileError, match="unknown profile 'nope'"):
        catalog.resolve("nope")
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(ProfileError, match="not valid JSON"):
        catalog.resolve("broken")
    broken.write_text(json.dumps({"name": "broken", "specs": [{"name": "b", "width": 0}]}))
    with pytest.raises(ProfileError, match="invalid"):
        catalog.resolve("broken")
    write_profile(tmp_path, "broken", "b")
    assert [s.name for s in catalog.resolve("broken").specs] == ["b"]  # failures are not cached
