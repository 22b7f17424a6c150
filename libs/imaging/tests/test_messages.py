"""Failure messages are sentences for people: no library internals, reprs or paths.

Every file of the corpus's ``bad/`` folder is copied into a temporary folder (so a leaked
path would be that folder's) and run through :func:`probe` and :func:`render`.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest

from darkroom_imaging.outcomes import Failure, Reason
from darkroom_imaging.probe import probe
from darkroom_imaging.render import render
from darkroom_imaging.specs import VariantSpec

CORPUS = Path(
    os.environ.get("DARKROOM_CORPUS") or Path(__file__).resolve().parents[4] / "shared" / "corpus"
)
BAD = sorted(p.name for p in (CORPUS / "bad").iterdir())
SPECS = [VariantSpec(name="small", width=64, height=64)]

#: Text that would show a person the engine's internals.
INTERNALS = re.compile(
    r"b'|b\"|vips|heif:|traceback|pyvips|libraw|errno|exception|0x[0-9a-f]{6,}", re.IGNORECASE
)


def _check(message: str, tmp: Path) -> None:
    assert not INTERNALS.search(message), message
    assert str(tmp) not in message, message
    assert str(CORPUS) not in message, message
    assert message[:1].isupper(), message
    assert message.endswith("."), message


@pytest.fixture(scope="module")
def copies(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("bad")
    for name in BAD:
        shutil.copyfile(CORPUS / "bad" / name, folder / name)
    return folder


@pytest.mark.parametrize("name", BAD)
def test_bad_file_messages_are_plain_sentences(copies: Path, name: str) -> None:
    path = copies / name
    checked = 0
    result = probe(path)
    if isinstance(result, Failure):
        _check(result.message, copies)
        checked += 1
    rendered = render(path, SPECS)
    for failure in [rendered.failure, *rendered.failures.values()]:
        if failure is not None:
            _check(failure.message, copies)
            assert "detail" not in failure.as_dict()
            checked += 1
    if name.startswith(("truncated", "corrupt", "zero", "fuzz", "bomb", "html", "svg")):
        assert checked, f"{name} was expected to fail somewhere"


def test_library_text_goes_to_detail_not_message(copies: Path) -> None:
    """libvips' explanation is kept for the log, the person gets a sentence."""
    rendered = render(copies / "truncated.jpg", SPECS)
    assert rendered.failure is not None
    assert rendered.failure.reason is Reason.TRUNCATED
    assert rendered.failure.message == "The image file is cut short, so it cannot be decoded."
    assert rendered.failure.detail is not None
    assert "premature end" in rendered.failure.detail.lower()
    html = render(copies / "html_renamed.jpg", SPECS).failure
    assert html is not None
    assert html.reason is Reason.UNSUPPORTED_FORMAT
    assert html.detail is not None
    assert "not a known file format" in html.detail
    assert html == Failure(Reason.UNSUPPORTED_FORMAT, html.message)  # detail is not compared


RAW_STRIPPED = sorted(p.name for p in (CORPUS / "raw" / "metadata_only").iterdir())


@pytest.mark.parametrize("name", RAW_STRIPPED)
def test_raw_verdicts_are_plain_sentences_in_probe_and_develop(tmp_path: Path, name: str) -> None:
    """The stripped, cut and JPEG XL RAWs: the same sentence from the probe and develop."""
    from darkroom_imaging.raw import develop

    path = tmp_path / name
    shutil.copyfile(CORPUS / "raw" / "metadata_only" / name, path)
    probed = probe(path)
    developed = develop(path, policy="embedded-preview", isolate=False)
    assert isinstance(probed, Failure), probed
    assert isinstance(developed, Failure), developed
    _check(probed.message, tmp_path)
    _check(developed.message, tmp_path)
    assert (developed.reason, developed.message) == (probed.reason, probed.message)
