"""Variant specs, spec hashes and profiles."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from darkroom_imaging.profiles import ProfileError, list_profiles, load_profile
from darkroom_imaging.specs import Crop, Profile, VariantSpec, Watermark, spec_hash


def test_spec_hash_is_stable_across_processes() -> None:
    spec = VariantSpec(name="thumb", width=300, height=300, fit="cover", gravity="attention")
    code = (
        "from darkroom_imaging.specs import VariantSpec, spec_hash;"
        "print(spec_hash(VariantSpec(name='thumb', width=300, height=300, fit='cover',"
        " gravity='attention')))"
    )
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert other.stdout.strip() == spec_hash(spec)
    assert len(spec_hash(spec)) == 16
    int(spec_hash(spec), 16)


@pytest.mark.parametrize(
    "change",
    [
        {"width": 301},
        {"height": 299},
        {"fit": "inside"},
        {"gravity": "entropy"},
        {"gravity": {"x": 0.2, "y": 0.8}},
        {"format": "webp"},
        {"quality": 81},
        {"keep_copyright": True},
        {"watermark": {"text": "© {artist}"}},
        {"recipe": [{"op": "grayscale"}]},
        {"recipe": [{"op": "blur", "sigma": 2.0}]},
    ],
)
def test_spec_hash_changes_with_every_output_field(change: dict[str, object]) -> None:
    base = {"name": "thumb", "width": 300, "height": 300, "fit": "cover"}
    assert spec_hash(VariantSpec.model_validate(base)) != spec_hash(
        VariantSpec.model_validate(base | change)
    )


def test_spec_hash_ignores_the_name_and_recipe_order_matters() -> None:
    a = VariantSpec(name="a", width=10, height=10)
    b = VariantSpec(name="b", width=10, height=10)
    assert spec_hash(a) == spec_hash(b)
    r1 = VariantSpec.model_validate(
        {**a.model_dump(), "recipe": [{"op": "negate"}, {"op": "grayscale"}]}
    )
    r2 = VariantSpec.model_validate(
        {**a.model_dump(), "recipe": [{"op": "grayscale"}, {"op": "negate"}]}
    )
    assert spec_hash(r1) != spec_hash(r2)


def test_specs_are_frozen_and_validated() -> None:
    spec = VariantSpec(name="x", width=10, height=10)
    with pytest.raises(ValidationError):
        spec.width = 20  # type: ignore[misc]
    with pytest.raises(ValidationError, match="inside the image"):
        Crop(left=0.5, top=0.0, width=0.6, height=1.0)
    with pytest.raises(ValidationError, match="webp effort"):
        VariantSpec(name="x", width=10, height=10, format="webp", effort=7)
    with pytest.raises(ValidationError, match="effort applies"):
        VariantSpec(name="x", width=10, height=10, format="jpeg", effort=3)
    with pytest.raises(ValidationError):
        VariantSpec(name="x", width=10, height=10, quality=0)
    with pytest.raises(ValidationError):
        VariantSpec(name="Bad Name", width=10, height=10)
    with pytest.raises(ValidationError):
        Watermark(text="x", opacity=1.5)
    with pytest.raises(ValidationError):
        VariantSpec.model_validate(
            {"name": "x", "width": 1, "height": 1, "recipe": [{"op": "swirl"}]}
        )


def test_profile_rejects_duplicate_names_and_reports_bounds() -> None:
    a = VariantSpec(name="a", width=100, height=50)
    b = VariantSpec(name="b", width=40, height=400)
    assert Profile(name="p", specs=(a, b)).max_bounds() == (100, 400)
    with pytest.raises(ValidationError, match="duplicate variant names: a"):
        Profile(name="p", specs=(a, a))


def test_builtin_profiles() -> None:
    assert {"bench", "default"} <= set(list_profiles())
    default = load_profile("default")
    assert [s.name for s in default.specs] == [
        "thumb",
        "icon",
        "medium",
        "large",
        "large_webp",
        "large_avif",
        "display",
    ]
    thumb = default.spec("thumb")
    assert (thumb.width, thumb.height, thumb.fit, thumb.gravity, thumb.quality) == (
        300,
        300,
        "cover",
        "attention",
        80,
    )
    display = default.spec("display")
    assert display.watermark is not None
    assert display.watermark.text == "© {artist}"
    assert default.spec("large_avif").format == "avif"
    bench = load_profile("bench")
    assert [(s.name, s.width, s.height, s.fit, s.format, s.quality) for s in bench.specs] == [
        ("thumb", 200, 200, "cover", "jpeg", 80),
        ("medium", 800, 600, "inside", "jpeg", 82),
        ("large", 1920, 1080, "inside", "jpeg", 85),
        ("large_webp", 1920, 1080, "inside", "webp", 80),
    ]
    assert bench.spec("thumb").gravity == "centre"
    assert bench.spec("large_webp").effort == 4


def test_profile_from_user_file(tmp_path: Path) -> None:
    path = tmp_path / "mine.json"
    path.write_text(
        json.dumps({"name": "mine", "specs": [{"name": "s", "width": 64, "height": 64}]})
    )
    assert load_profile(path).spec("s").width == 64
    assert load_profile(str(path)).name == "mine"


def test_profile_errors(tmp_path: Path) -> None:
    with pytest.raises(ProfileError, match="unknown profile 'nope'"):
        load_profile("nope")
    with pytest.raises(ProfileError, match="cannot read"):
        load_profile(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ProfileError, match="not valid JSON"):
        load_profile(bad)
    invalid = tmp_path / "invalid.json"
    invalid.write_text(json.dumps({"name": "x", "specs": [{"name": "s", "width": 0, "height": 1}]}))
    with pytest.raises(ProfileError, match="invalid"):
        load_profile(invalid)
